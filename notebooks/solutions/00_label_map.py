answer = probs.argmax(axis=0)  # for each pixel, the index of the class with the highest probability
exercises.check_label_map(answer, probs)
