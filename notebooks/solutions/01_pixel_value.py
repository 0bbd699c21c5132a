answer = tuple(image[10, 100])  # row 10 first, then column 100: the pixel's three channel values
exercises.check_pixel_value(answer, image, row=10, col=100)
