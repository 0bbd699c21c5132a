answer = 4096 * 512 * 7 * 7 + 4096  # 4096 kernels of 512 x 7 x 7 weights, plus 4096 biases
exercises.check_conv_parameters(answer, in_channels=512, out_channels=4096, kernel_size=7)
