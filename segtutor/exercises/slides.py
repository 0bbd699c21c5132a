"""Exercise checks of notebook 12 (your own slides): magnification, pixel size and what a network sees in µm."""

from __future__ import annotations

from typing import Any

from torch import nn

from segtutor.data import magnification_to_mpp
from segtutor.exercises.feedback import Feedback, check_number
from segtutor.explain import receptive_field


def check_downsample(answer: Any, slide_mpp: float, magnification: float) -> Feedback:
    """How many of a scan's pixels go across one pixel read at ``magnification`` (what ``Slide.downsample`` says)."""
    target = magnification_to_mpp(magnification)
    expected = target / slide_mpp
    return check_number(
        f"scan pixels per pixel at {magnification:g}×",
        answer,
        expected,
        right=f"{magnification:g}× is {target:g} µm per pixel; the scan's pixels are {slide_mpp:g} µm, so "
        f"{target:g} / {slide_mpp:g} = {expected:g} of them lie across each pixel read at {magnification:g}× "
        f"({expected * expected:g} per pixel by area).",
        hint=f"turn {magnification:g}× into µm per pixel first (µm per pixel = 10 / magnification), then divide "
        f"by the scan's {slide_mpp:g} µm per pixel.",
    )


def check_field_in_microns(answer: Any, model: nn.Module, magnification: float) -> Feedback:
    """The receptive field of a whole network, in µm of tissue, for images read at ``magnification``."""
    microns_per_pixel = magnification_to_mpp(magnification)
    field = receptive_field(model, microns_per_pixel=microns_per_pixel)[-1]
    return check_number(
        f"receptive field in µm at {magnification:g}×",
        answer,
        field.size_um,
        right=f"the network sees {field.size} pixels across whatever the magnification; at {magnification:g}× "
        f"a pixel is {microns_per_pixel:g} µm, so that is {field.size} × {microns_per_pixel:g} = "
        f"{field.size_um:g} µm of tissue.",
        hint="the receptive field in pixels is the last entry of receptive_field(model) (its .size); multiply it "
        "by the µm per pixel of the magnification (10 / magnification).",
    )
