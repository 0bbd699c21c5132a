in_channels, out_channels, kernel_size = 512, 1024, 3
answer = out_channels * in_channels * kernel_size * kernel_size + out_channels  # weights + one bias per output channel
exercises.check_conv_parameters(answer, in_channels=512, out_channels=1024, kernel_size=3)
