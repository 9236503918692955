"""VISSL's feature taps over a torchvision ResNet, for the benchmark reference scripts.

POOL_MAP is VISSL's canonical ResNet-50 LINEAR_EVAL_FEAT_POOL_OPS_MAP (ImageNet-1k linear
benchmark); Taps runs the network once and returns every tap pooled by its op and flattened,
in map order: conv1 (after ReLU, before max-pool), res2..res5, res5avg.
"""
import torch

POOL_MAP = [
    ("conv1", torch.nn.AvgPool2d([10, 10], 10, 4)),
    ("res2", torch.nn.AvgPool2d([16, 16], 8, 0)),
    ("res3", torch.nn.AvgPool2d([13, 13], 5, 0)),
    ("res4", torch.nn.AvgPool2d([8, 8], 3, 0)),
    ("res5", torch.nn.AvgPool2d([6, 6], 1, 0)),
    ("res5avg", torch.nn.Identity()),
]


class Taps(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.pools = torch.nn.ModuleList([op for _, op in POOL_MAP])

    def forward(self, x):
        n = self.net
        feats = {}
        x = n.relu(n.bn1(n.conv1(x)))
        feats["conv1"] = x
        x = n.maxpool(x)
        for name, layer in zip(["res2", "res3", "res4", "res5"], [n.layer1, n.layer2, n.layer3, n.layer4]):
            x = layer(x)
            feats[name] = x
        feats["res5avg"] = n.avgpool(x)
        return tuple(torch.flatten(op(feats[name]), 1) for (name, _), op in zip(POOL_MAP, self.pools))
