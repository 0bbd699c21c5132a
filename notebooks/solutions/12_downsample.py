# 10× is 10 / 10 = 1 µm per pixel; the scan's pixels are 0.25 µm: 4 of them lie across one pixel at 10×.
answer = (10 / 10) / 0.25
exercises.check_downsample(answer, slide_mpp=0.25, magnification=10)
