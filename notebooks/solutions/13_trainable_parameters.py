# Frozen parameters have requires_grad=False: the optimizer gets no gradient for them.
frozen = freeze_encoder(create_model("deeplabv3", num_classes=4, pretrained=True))
answer = sum(parameter.numel() for parameter in frozen.parameters() if parameter.requires_grad)
exercises.check_trainable_parameters(answer, frozen)
