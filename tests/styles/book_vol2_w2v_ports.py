"""torch ports of ``book_vol2_w2v.CBOW``: two ``nn.Embedding`` and the port's own
``loss(contexts, target)`` (``--loss model``). The negatives are drawn as a torch user
draws them: ``torch.multinomial`` on each row's unigram probabilities, the target's
set to 0, without replacement (``Multinomial``, one call for the batch; ``PerRow``, one
call per row, as the book's loop). During a check the NumPy side's draws answer them.
"""
import torch
import torch.nn.functional as F
from torch import nn

from tests.styles.book_vol2_w2v import CORPUS, HIDDEN, SAMPLES, VOCAB


class Multinomial(nn.Module):
    def __init__(self, V=VOCAB, H=HIDDEN, k=SAMPLES, power=0.75):
        super().__init__()
        self.in_embed = nn.Embedding(V, H)
        self.out_embed = nn.Embedding(V, H)
        counts = torch.bincount(torch.as_tensor(CORPUS), minlength=V).double()
        self.register_buffer("unigram", counts ** power / (counts ** power).sum())
        self.k = k

    def forward(self, contexts):
        return self.in_embed(contexts).mean(dim=1)

    def negatives(self, target):
        p = self.unigram.expand(len(target), -1).clone()
        p[torch.arange(len(target)), target] = 0
        return torch.multinomial(p, self.k, replacement=False)

    def loss(self, contexts, target):
        h = self(contexts)
        negative = self.negatives(target)
        positive = (h * self.out_embed(target)).sum(dim=1)
        scores = (h[:, None, :] * self.out_embed(negative)).sum(dim=2)
        # the book sums one batch-mean loss per sample: the positive's, then each negative's
        return -F.logsigmoid(positive).mean() - F.logsigmoid(-scores).mean(dim=0).sum()


class PerRow(Multinomial):
    def negatives(self, target):
        rows = []
        for word in target:
            p = self.unigram.clone()
            p[word] = 0
            rows.append(torch.multinomial(p, self.k, replacement=False))
        return torch.stack(rows)


def multinomial():
    return Multinomial()


def per_row():
    return PerRow()
