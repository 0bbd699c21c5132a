for snapshot in machine.snapshots:  # in step order
    print(snapshot.iteration, round(snapshot.iou[1], 3))
answer = next(s.iteration for s in machine.snapshots if s.iou[1] >= 0.5)  # or machine.first_iteration("tumor", 0.5)
exercises.check_first_step(answer, machine, "tumor", 0.5)
