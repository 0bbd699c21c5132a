# Output (1, 2): the kernel's top-left weight sits on image[1, 2], so the window is rows 1-3, columns 2-4.
window = image[1:4, 2:5]
answer = (window * kernel).sum()  # multiply element by element, then add the nine products
exercises.check_conv_pixel(answer, image, kernel, position=(1, 2))
