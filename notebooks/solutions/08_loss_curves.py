for name, run in runs.items():  # read each run's numbers the way you read its curves
    print(name, f"training loss: first {run.train[0]:.2f}, highest {run.train.max():.2f}, last {run.train[-1]:.2f};",
          f"validation loss: lowest {run.val.min():.2f}, last {run.val[-1]:.2f}")
# C: training keeps falling while validation climbs back up after iteration ~250: overfitting.
# A: the loss jumps far above its start in the first steps and never settles low: too high a learning rate.
answer = ("C", "A")
exercises.check_loss_curves(answer, runs)
