# The network sees the same number of pixels at any magnification; at 40× each pixel is 10 / 40 = 0.25 µm.
pixels = receptive_field(unet)[-1].size  # 204 pixels across
answer = pixels * 10 / 40
exercises.check_field_in_microns(answer, unet, magnification=40)
