"""The parameter update of mini-batch SGD with momentum and weight decay (Sect. 3.1)."""


def sgd_momentum_update(param, grad, velocity, learning_rate, momentum, weight_decay):
    """One SGD step, in place, in the form of Krizhevsky et al. (2012), which the paper follows:

        v <- momentum * v - learning_rate * (grad + weight_decay * param)
        param <- param + v

    The learning rate sits inside the velocity, as in Caffe, so lowering it slows the step at once
    instead of after the momentum has decayed.

    Parameters
    ----------
    param, grad, velocity : arrays of one shape; ``param`` and ``velocity`` are updated in place
    learning_rate, momentum, weight_decay : float

    Returns
    -------
    None
    """
    velocity *= momentum
    velocity -= learning_rate * (grad + weight_decay * param)
    param += velocity
