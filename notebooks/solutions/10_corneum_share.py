answer = (skin_mask == 1).mean()  # stratum corneum pixels over all pixels
exercises.check_class_share(answer, skin_mask, class_index=1)
