h = max(0.0, w1 * x)  # layer 1: 1.2 (the ReLU is open: its slope is 1)
z = w2 * h  # layer 2: the logit, −0.6
p = 1 / (1 + np.exp(-z))  # sigmoid: 0.354
# chain rule: ∂loss/∂w1 = ∂loss/∂z · ∂z/∂h · ∂h/∂w1 = (p − 1) · w2 · x
answer = (p - 1) * w2 * x
exercises.check_chain_rule(answer, x=x, w1=w1, w2=w2)
