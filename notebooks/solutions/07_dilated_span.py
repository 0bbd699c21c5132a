answer = 12 * (3 - 1) + 1  # 3 taps, 12 pixels apart: from the first tap to the last is 24 pixels, plus the first one
exercises.check_dilated_span(answer, kernel_size=3, dilation=12)
