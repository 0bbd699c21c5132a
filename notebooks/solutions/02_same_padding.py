span = 2 * (5 - 1) + 1  # a 5x5 kernel with dilation 2 spans 9 pixels
answer = (span - 1) // 2  # 4 extra pixels to cover on each side of the centre
exercises.check_same_padding(answer, kernel_size=5, dilation=2)
