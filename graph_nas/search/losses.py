"""The one loss of the learning algorithms: REINFORCE and PQT share it.

For sampled walks w_i with log-probabilities log p(w_i), walk entropies
H(w_i) (under the algorithm's entropy convention; see
:mod:`graph_nas.search.controller`), rewards R_i, a baseline b, optional weights
u_i (default 1) and the priority queue's walks q_1..q_K:

  pg        = -sum_i u_i (R_i - b) log p(w_i) / sum_i u_i
  entropy   =  sum_i u_i H(w_i) / sum_i u_i
  queue_nll = -(1 / K) sum_j log p(q_j)          (0 when K = 0)
  total     = pg_weight * pg - entropy_weight * entropy
              + queue_weight * queue_nll

REINFORCE is pg_weight 1, queue_weight 0; PQT (Abolafia et al. 2018) is
queue_weight 1 with pg_weight 0 or an added REINFORCE term. The entropy
term is the usual per-walk regulariser (as in ENAS and brain_coder): its
gradient is sum_i u_i grad H(w_i), without the score-function part
E[H(w) grad log p(w)] of the gradient of E[H(w)].

A walk whose reward is not finite gets weight 0 in every term (it is
dropped); with no walk of positive weight the pg and entropy terms are 0,
and an empty queue contributes 0, so neither can make the loss or its
gradient non-finite.
"""

from typing import NamedTuple, Optional

import tensorflow as tf


class Loss(NamedTuple):
  total: tf.Tensor
  pg: tf.Tensor  # unweighted terms, as defined in the module doc
  entropy: tf.Tensor
  queue_nll: tf.Tensor


def _weighted_mean(x, u):
  return tf.math.divide_no_nan(tf.reduce_sum(u * x), tf.reduce_sum(u))


def loss(logp, entropy, rewards, baseline, pg_weight, entropy_weight,
         queue_weight=0.0, queue_logp: Optional[tf.Tensor] = None,
         weights: Optional[tf.Tensor] = None) -> Loss:
  """The loss of the module doc (a differentiable scalar and its terms).

  logp, entropy: float [B], differentiable (the controller's replay);
  rewards: float [B], may hold NaN or inf (those walks are dropped);
  baseline: float scalar; queue_logp: float [K] or None; weights: float [B]
  (>= 0) or None for equal weights.
  """
  logp = tf.convert_to_tensor(logp, tf.float32)
  entropy = tf.convert_to_tensor(entropy, tf.float32)
  rewards = tf.convert_to_tensor(rewards, tf.float32)
  finite = tf.math.is_finite(rewards)
  u = tf.ones_like(rewards) if weights is None else \
      tf.convert_to_tensor(weights, tf.float32)
  u = tf.where(finite, u, 0.0)
  advantages = tf.where(finite, rewards - tf.cast(baseline, tf.float32), 0.0)
  pg = -_weighted_mean(advantages * logp, u)
  ent = _weighted_mean(entropy, u)
  if queue_logp is None:
    queue_nll = tf.constant(0.0)
  else:
    queue_logp = tf.convert_to_tensor(queue_logp, tf.float32)
    queue_nll = -tf.math.divide_no_nan(
        tf.reduce_sum(queue_logp), tf.cast(tf.size(queue_logp), tf.float32))
  total = (tf.cast(pg_weight, tf.float32) * pg
           - tf.cast(entropy_weight, tf.float32) * ent
           + tf.cast(queue_weight, tf.float32) * queue_nll)
  return Loss(total, pg, ent, queue_nll)
