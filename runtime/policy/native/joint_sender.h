// C ABI of the native 1 kHz joint command sender (libedgeperc_joint_stream.so).
//
// What libfranka's control callback is to a robot program, this is to the policy runtime: a
// thread of its own, outside Python (no GIL, optionally SCHED_FIFO), that wakes on each 1 ms slot
// (clock_nanosleep on CLOCK_MONOTONIC, then a short spin) and sends the next row the planner
// queued. If the planner is late the sender does not wait: it makes the tick itself with the
// limiter's hold tick toward the last reference (joint_limiter.h) and marks it held; the planner
// takes held rows over and continues the chain from them (the same contract as ticker.Ticker).
//
// "Sending" writes the command into caller-owned logs (q_c, widths, masks, lateness, held) and
// then publishes the count of sent ticks: a plant (or a UDP writer) reads the stream from there.
// The queue between them is lock-free (one CAS per slot decides planner row or held tick), so
// the planner can never delay a tick. Every function checks its arguments and returns an EpStatus.
#pragma once
#include <stdint.h>

#include "edgeperc/common.h"
#include "joint_limiter.h"

#if defined(_WIN32)
#define EP_JS_API __declspec(dllexport)
#else
#define EP_JS_API __attribute__((visibility("default")))
#endif

#define EP_JOINT_STREAM_ABI 1

// Status codes beyond common.h's EpStatus (EP_OK, EP_ERR_NULL_POINTER, EP_ERR_BAD_ARGUMENT).
enum EpJointStreamStatus {
  EP_JS_ERR_PERMISSION = 20,  // SCHED_FIFO refused (needs CAP_SYS_NICE or an rtprio limit)
  EP_JS_ERR_STATE = 21,       // started twice, pushed out of order, ...
  EP_JS_ERR_QUEUE_FULL = 22,  // more rows queued ahead than the capacity
  EP_JS_ERR_THREAD = 23,      // the thread could not be created
};

#ifdef __cplusplus
extern "C" {
#endif

typedef struct EpJointSender EpJointSender;

EP_JS_API int32_t ep_joint_stream_abi(void);

// One hold tick (for tests against the Python limiter): state (21) in place; goal (7) or NULL.
EP_JS_API int32_t ep_limit_hold(const EpLimiterParams* params, double* state, const double* goal, int32_t* bits);

// flag_bits[EP_LIMITER_BITS]: the caller's mask bit for each EpLimiterBit, in enum order.
// start_state (21): the limiter state before tick 0. Logs hold max_ticks rows each (q_c: 7 per
// row) and must outlive the sender. capacity: most rows queued ahead (>= 2).
EP_JS_API int32_t ep_joint_sender_create(const EpLimiterParams* params, const uint32_t* flag_bits,
                                         const double* start_state, double start_width, int64_t max_ticks,
                                         int32_t capacity, double* q_c, double* widths, uint32_t* masks,
                                         double* lateness, uint8_t* held, EpJointSender** out);
// Start the thread; the first slot is delay_s from now (returned in *t0_s, CLOCK_MONOTONIC
// seconds). priority 0: normal scheduling, 1..99: SCHED_FIFO (EP_JS_ERR_PERMISSION without the
// right). cpu >= 0: pin the thread to that CPU (-1: anywhere); mlock: lock the process's memory
// (no page fault in the tick path; EP_JS_ERR_PERMISSION without the right).
EP_JS_API int32_t ep_joint_sender_start(EpJointSender* s, double delay_s, int32_t priority, double spin_s,
                                        int32_t cpu, int32_t mlock, double* t0_s);
// Queue row `index` (rows come in index order): state after it (21), the reference it tracked
// (7, NULL = stop), width, mask. *accepted = 0 when the sender already sent a held row at index:
// take that one over (ep_joint_sender_row) instead.
EP_JS_API int32_t ep_joint_sender_push(EpJointSender* s, int64_t index, const double* state, const double* ref,
                                       double width, uint32_t mask, int32_t* accepted);
// Ticks sent so far (their logs are written).
EP_JS_API int64_t ep_joint_sender_sent(const EpJointSender* s);
// A recently sent row (the last `capacity` ticks): state (21), ref (7; *has_ref 0 = stop), width,
// mask, *held. EP_ERR_BAD_ARGUMENT for a row not sent yet or forgotten.
EP_JS_API int32_t ep_joint_sender_row(EpJointSender* s, int64_t index, double* state, double* ref, int32_t* has_ref,
                                      double* width, uint32_t* mask, int32_t* held);
// The planner queued its last row: send what is queued, then end the thread.
EP_JS_API int32_t ep_joint_sender_finish(EpJointSender* s);
// 1 while the thread runs.
EP_JS_API int32_t ep_joint_sender_running(const EpJointSender* s);
// End the thread now and wait for it.
EP_JS_API int32_t ep_joint_sender_stop(EpJointSender* s);
EP_JS_API void ep_joint_sender_destroy(EpJointSender* s);
EP_JS_API const char* ep_joint_stream_status_name(int32_t status);

#ifdef __cplusplus
}
#endif
