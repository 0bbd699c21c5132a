beta1, beta2, eps = 0.9, 0.999, 1e-8
w, m, v = weight, 0.0, 0.0  # both running averages start at 0
for t, g in enumerate(grads, start=1):
    m = beta1 * m + (1 - beta1) * g  # running average of the gradients
    v = beta2 * v + (1 - beta2) * g**2  # running average of the squared gradients
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)  # bias correction: the averages started at 0
    w = w - lr * m_hat / (np.sqrt(v_hat) + eps)  # about lr per step: 0.5 -> 0.4 -> 0.353
answer = w  # SGD would have moved it by only 0.1·(0.02 − 0.005) = 0.0015
exercises.check_adam_steps(answer, weight=weight, grads=grads, lr=lr)
