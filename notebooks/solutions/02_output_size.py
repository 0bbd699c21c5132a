in_size, kernel_size, stride, padding = 97, 3, 2, 1
answer = (in_size + 2 * padding - (kernel_size - 1) - 1) // stride + 1  # ⌊(97 + 2 − 2 − 1) / 2⌋ + 1
exercises.check_output_size(answer, in_size=97, kernel_size=3, stride=2, padding=1)
