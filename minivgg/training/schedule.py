"""The learning-rate schedule of Sect. 3.1: start at 1e-2, divide by 10 when the validation accuracy
stops improving, three times in all, then stop (the paper stopped after 370K iterations, 74 epochs)."""
from dataclasses import asdict, dataclass

__all__ = ["ReduceOnPlateau"]


@dataclass
class ReduceOnPlateau:
    """Divide the learning rate by ``1 / factor`` after ``patience`` epochs without a better validation
    accuracy; after ``max_reductions`` reductions, the next plateau ends training.

    Call ``epoch_end(val_accuracy)`` once per epoch; it returns True when training should stop.
    """

    learning_rate: float = 1e-2
    factor: float = 0.1
    patience: int = 2
    max_reductions: int = 3
    min_improvement: float = 1e-4
    best: float = float("-inf")
    epochs_without_improvement: int = 0
    reductions: int = 0
    finished: bool = False

    def __post_init__(self):
        if not 0 < self.factor < 1:
            raise ValueError(f"ReduceOnPlateau: factor must be in (0, 1), got {self.factor}")
        if self.patience < 1 or self.learning_rate <= 0:
            raise ValueError(f"ReduceOnPlateau: need patience >= 1 and a positive learning rate, got "
                             f"{self.patience}, {self.learning_rate}")

    def epoch_end(self, val_accuracy):
        if val_accuracy > self.best + self.min_improvement:
            self.best, self.epochs_without_improvement = val_accuracy, 0
            return False
        self.epochs_without_improvement += 1
        if self.epochs_without_improvement < self.patience:
            return False
        if self.reductions == self.max_reductions:
            self.finished = True
            return True
        self.learning_rate *= self.factor
        self.reductions += 1
        self.epochs_without_improvement = 0
        return False

    def state(self):
        return asdict(self)

    @classmethod
    def from_state(cls, state):
        return cls(**state)
