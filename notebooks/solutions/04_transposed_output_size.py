in_size, kernel_size, stride, padding = 12, 4, 2, 1
answer = (in_size - 1) * stride - 2 * padding + kernel_size  # (12 − 1)·2 − 2 + 4: exactly twice the input
exercises.check_transposed_output_size(answer, in_size=12, kernel_size=4, stride=2, padding=1)
