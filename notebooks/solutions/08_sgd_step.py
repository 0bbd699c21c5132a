answer = 0.8 - 0.01 * (-2.5)  # new weight = old weight − learning rate × gradient
exercises.check_sgd_step(answer, weight=0.8, grad=-2.5, lr=0.01)
