# Output stride 8: 128 / 8 = 16 pixels per side; the last stage has 8 x width = 128 channels.
answer = (128, 16, 16)
exercises.check_feature_size(answer, deeplab, "backbone", input_size=(3, 128, 128))
