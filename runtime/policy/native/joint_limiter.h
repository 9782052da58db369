// The 1 kHz joint limiter's hold tick in C++: a line-for-line port of guard._joint_step (without
// feed-forward: a held tick tracks a fixed reference) for the native command sender, which makes
// the ticks itself when the planner is late. Same operations in the same order, built with
// -ffp-contract=off, so it rounds like the Python it ports (tests compare them bit for bit).
#pragma once
#include <math.h>
#include <stdint.h>

#define EP_JOINTS 7
#define EP_STATE (3 * EP_JOINTS)  // q, dq, ddq

// Bits of a tick, as the Python limiter reports them (guard._BIT_FLAGS + the two target flags).
enum EpLimiterBit {
  EP_BIT_VELOCITY_LIMITED = 1,
  EP_BIT_ACCELERATION_LIMITED = 2,
  EP_BIT_JERK_LIMITED = 4,
  EP_BIT_POSITION_BRAKING = 8,
  EP_BIT_POSITION_CLIPPED = 16,
  EP_BIT_STOPPING = 32,
};
#define EP_LIMITER_BITS 6

// Everything the limiter reads, filled from Python (PandaLimits.joint_caps and guard's constants),
// so there is one source of truth. caps[j] = (v_cap, a_cap, j_cap, lo, hi, brake_lo, brake_hi).
typedef struct EpLimiterParams {
  double caps[EP_JOINTS][7];
  double dt;
  double k_p;
  double k_v;
  double track_acc_share;
  double track_jerk_share;
  double bound_acc_share;
  double rest_dq;
  double rest_ddq;
  double rest_q;
} EpLimiterParams;

// One joint, one tick toward `goal` (has_goal 0: stop). Updates q, v, a; returns the bits.
inline int32_t ep_joint_step(const EpLimiterParams* p, double* q_io, double* v_io, double* a_io, int has_goal,
                             double goal, double v_cap, double a_cap, double j_cap, double lo, double hi) {
  const double q = *q_io, v = *v_io, a = *a_io, dt = p->dt;
  if (v == 0.0 && a == 0.0 && (!has_goal || goal == q)) {
    *v_io = 0.0;
    *a_io = 0.0;
    return 0;
  }
  int32_t bits = 0;
  const double jdt = j_cap * dt;
  double v_want;
  if (!has_goal) {
    v_want = 0.0;
  } else {
    const double error = goal - q;
    const double distance = error >= 0.0 ? error : -error;
    const double a_track = p->track_acc_share * a_cap;
    const double reaction = (a_cap + a_track) / j_cap + 2 * dt;
    double speed = a_track * (sqrt(reaction * reaction + 2.0 * distance / a_track) - reaction);
    const double linear = p->k_p * distance;
    if (linear < speed) speed = linear;
    v_want = 0.0 + (error >= 0.0 ? speed : -speed);  // as Python's v_ff + (...), v_ff = 0.0 (signed zeros too)
    if (v_want > v_cap) {
      v_want = v_cap;
      bits = 1;
    } else if (v_want < -v_cap) {
      v_want = -v_cap;
      bits = 1;
    }
  }
  const double dv = v_want - v;
  const double gap = dv >= 0.0 ? dv : -dv;
  double accel = sqrt(2.0 * p->track_jerk_share * j_cap * gap);
  const double linear_v = p->k_v * gap;
  if (linear_v < accel) accel = linear_v;
  if (accel > a_cap) {
    accel = a_cap;
    bits |= 2;
  }
  const double a_want = dv >= 0.0 ? accel : -accel;
  const double a_minus = a - jdt, a_plus = a + jdt;
  double a_tracked;
  if (a_want < a_minus) {
    a_tracked = a_minus;
    bits |= 4;
  } else if (a_want > a_plus) {
    a_tracked = a_plus;
    bits |= 4;
  } else {
    a_tracked = a_want;
  }
  double a_floor = -a_cap < a_plus ? -a_cap : a_plus;
  if (a_floor < a_minus) a_floor = a_minus;
  double a_ceil = a_cap > a_minus ? a_cap : a_minus;
  if (a_ceil > a_plus) a_ceil = a_plus;
  const double a_bound = p->bound_acc_share * a_cap;
  const double reaction = (a_cap + a_bound) / j_cap + 2 * dt;
  double v_far = v + a_plus * dt;
  const double room_up = hi - (v_far > 0.0 ? q + v_far * dt : q);
  const double v_room_up =
      room_up > 0.0 ? a_bound * (sqrt(reaction * reaction + 2.0 * room_up / a_bound) - reaction) : 0.0;
  v_far = v + a_minus * dt;
  const double room_down = (v_far < 0.0 ? q + v_far * dt : q) - lo;
  const double v_room_down =
      room_down > 0.0 ? a_bound * (sqrt(reaction * reaction + 2.0 * room_down / a_bound) - reaction) : 0.0;
  const double v_hi = v_cap < v_room_up ? v_cap : v_room_up;
  const double v_lo = v_cap < v_room_down ? -v_cap : -v_room_down;
  const double a_v_up = v_hi >= v ? j_cap * (sqrt(dt * dt + 2.0 * (v_hi - v) / j_cap) - dt) : (v_hi - v) / dt;
  const double a_v_down = v >= v_lo ? -j_cap * (sqrt(dt * dt + 2.0 * (v - v_lo) / j_cap) - dt) : (v_lo - v) / dt;
  double a_next;
  if (a_v_up < a_floor) {
    a_next = a_floor;
  } else if (a_v_down > a_ceil) {
    a_next = a_ceil;
  } else {
    const double low = a_floor > a_v_down ? a_floor : a_v_down;
    const double high = a_ceil < a_v_up ? a_ceil : a_v_up;
    a_next = a_tracked < low ? low : (a_tracked > high ? high : a_tracked);
  }
  if (a_next < a_tracked) {
    bits |= v_room_up < v_cap ? 8 : 1;
  } else if (a_next > a_tracked) {
    bits |= v_room_down < v_cap ? 8 : 1;
  }
  const double v_next = v + a_next * dt;
  const double q_next = q + v_next * dt;
  if (-p->rest_dq < v_next && v_next < p->rest_dq && -p->rest_ddq < a_next && a_next < p->rest_ddq) {
    if (!has_goal) {
      *v_io = 0.0;
      *a_io = 0.0;
      return bits;  // q stays
    }
    if (-p->rest_q < goal - q_next && goal - q_next < p->rest_q) {
      *q_io = goal;
      *v_io = 0.0;
      *a_io = 0.0;
      return bits;
    }
  }
  *q_io = q_next;
  *v_io = v_next;
  *a_io = a_next;
  return bits;
}

// A whole hold tick: state (q[7], dq[7], ddq[7]) in place toward `goal` (7, finite; NULL: stop),
// goals clipped to [lo, hi] as limit_tick does. Returns EpLimiterBit bits.
inline int32_t ep_limit_hold_tick(const EpLimiterParams* p, double* state, const double* goal) {
  int32_t bits = goal ? 0 : EP_BIT_STOPPING;
  for (int j = 0; j < EP_JOINTS; ++j) {
    const double* c = p->caps[j];
    double g = 0.0;
    if (goal) {
      g = goal[j] < c[3] ? c[3] : goal[j];  // min(max(g, lo), hi)
      g = g > c[4] ? c[4] : g;
      if (g != goal[j]) bits |= EP_BIT_POSITION_CLIPPED;
    }
    bits |= ep_joint_step(p, &state[j], &state[EP_JOINTS + j], &state[2 * EP_JOINTS + j], goal != nullptr, g,
                          c[0], c[1], c[2], c[5], c[6]);
  }
  return bits;
}
