print("output stride after each stage:", deeplab.backbone.strides, " channels out:", deeplab.backbone.out_channels)
# Output stride 16: 512 / 16 = 32 pixels per side. ResNet-50's last stage has 8 x 64 channels, times 4 for the
# bottleneck blocks' last 1x1 convolution: 2048.
answer = (2048, 512 // 16, 512 // 16)
exercises.check_feature_size(answer, deeplab, "backbone", input_size=(3, 512, 512))
