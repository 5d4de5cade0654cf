#!/usr/bin/env python3
"""Train and quantise the ml-inference model.

A 64-32-10 ReLU MLP on scikit-learn's bundled 8x8 digits (1,797 images, no
download). Pixels are integers 0..16. The model is quantised to integers so
the ObelyskVM can run it exactly:

    h_j  = b1_j + sum_i W1_ji * x_i          (|W1| <= 63)
    a_j  = max(h_j, 0)
    s_k  = b2_k + sum_j W2_kj * a_j          (|W2| <= 63)
    class = argmax_k s_k                     (first maximum wins)

With x <= 16 and 7-bit weights, |h| < 2^16 and |s| < 2^27, so every
comparison stays inside the VM's range-checked `lt` (|a - b| < 2^29).

Writes model.json (weights) and heldout.json (the held-out test images,
their labels, and the quantised reference scores computed here in numpy).

    pip install scikit-learn numpy && python3 workloads/ml-inference/train.py
"""
import json
import os

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
QMAX = 63

digits = load_digits()
X, y = digits.data.astype(np.int64), digits.target.astype(np.int64)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=7, stratify=y)

mlp = MLPClassifier(hidden_layer_sizes=(32,), activation="relu", max_iter=2000, random_state=7, alpha=1e-3)
mlp.fit(X_train / 16.0, y_train)
W1, W2 = mlp.coefs_[0].T / 16.0, mlp.coefs_[1].T  # W1 acts on raw 0..16 pixels
b1, b2 = mlp.intercepts_

s1 = QMAX / np.abs(W1).max()
s2 = QMAX / np.abs(W2).max()
W1q = np.round(W1 * s1).astype(np.int64)
b1q = np.round(b1 * s1).astype(np.int64)
W2q = np.round(W2 * s2).astype(np.int64)
b2q = np.round(b2 * s1 * s2).astype(np.int64)


def forward(x):
    h = W1q @ x + b1q
    a = np.maximum(h, 0)
    return W2q @ a + b2q


scores = np.array([forward(x) for x in X_test])
pred = scores.argmax(axis=1)
acc_q = float((pred == y_test).mean())
acc_f = float(mlp.score(X_test / 16.0, y_test))
assert np.abs(scores).max() < 2**27, "scores outside the VM's comparison range"
print(f"float accuracy {acc_f:.4f}, quantised accuracy {acc_q:.4f} on {len(y_test)} held-out digits")

with open(os.path.join(HERE, "model.json"), "w") as f:
    json.dump(
        {
            "description": "64-32-10 ReLU MLP on sklearn digits, 7-bit integer weights (see train.py)",
            "inputs": 64,
            "hidden": 32,
            "classes": 10,
            "w1": W1q.tolist(),
            "b1": b1q.tolist(),
            "w2": W2q.tolist(),
            "b2": b2q.tolist(),
            "heldout_accuracy": acc_q,
        },
        f,
    )
with open(os.path.join(HERE, "heldout.json"), "w") as f:
    json.dump({"images": X_test.tolist(), "labels": y_test.tolist(), "scores": scores.tolist()}, f)
