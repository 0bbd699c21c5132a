# The up-convolution turns level 2's 32 channels into 16; the skip from enc1 brings 16 more.
answer = 16 + 16
exercises.check_unet_concat_channels(answer, unet, level=1)
