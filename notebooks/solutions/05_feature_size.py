# Level 3 has 64 channels and has been pooled 3 times: 96 / 2**3 = 12 pixels per side.
answer = (64, 12, 12)
exercises.check_feature_size(answer, unet, "encoder.3", input_size=(3, 96, 96))
