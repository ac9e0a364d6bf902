package broker

import (
	"context"
	"time"
)

// TransitionKind names a cluster-wide change of a channel's occupancy or of
// a presence channel's membership: what webhooks report.
type TransitionKind uint8

const (
	// TransitionOccupied: the channel's subscriber count over the cluster
	// went from 0 to more, and no vacancy of it was pending (a pending one
	// is cancelled instead, and nothing is reported).
	TransitionOccupied TransitionKind = iota + 1
	// TransitionVacated: the count over the cluster went back to 0. It is
	// pending: whoever reports it settles it (Settle) after a delay, and a
	// re-occupation meanwhile cancels it.
	TransitionVacated
	// TransitionCount: the count over the cluster changed to Count.
	TransitionCount
	// TransitionMemberAdded: a user got its first connection in a presence
	// channel over the cluster, and no removal of it was pending (a pending
	// one is cancelled instead, and nothing is reported).
	TransitionMemberAdded
	// TransitionMemberRemoved: the user's last connection anywhere left the
	// channel. Pending, like TransitionVacated.
	TransitionMemberRemoved
)

func (k TransitionKind) String() string {
	switch k {
	case TransitionOccupied:
		return "occupied"
	case TransitionVacated:
		return "vacated"
	case TransitionCount:
		return "count"
	case TransitionMemberAdded:
		return "member_added"
	case TransitionMemberRemoved:
		return "member_removed"
	}
	return "unknown"
}

// Pending reports whether a transition of kind k waits to be settled.
func (k TransitionKind) Pending() bool {
	return k == TransitionVacated || k == TransitionMemberRemoved
}

// Transition is one cluster-wide change, reported to exactly one node.
type Transition struct {
	Kind    TransitionKind
	AppID   string
	Channel string
	UserID  string // member transitions
	Count   int    // TransitionCount
	// Epoch identifies a pending transition, for Settle.
	Epoch int64
}

// TransitionHandler receives the transitions this node is to report. It is
// called in the order the broker decided them for one channel, possibly
// with locks held (the hub's, the broker's): it must not block and must not
// call back into the broker.
type TransitionHandler func(Transition)

// PendingHold is how long a broker keeps a pending transition that nobody
// settles: a delay before settling must be well under it.
const PendingHold = 2 * time.Minute

// MaxSettleDelay bounds the delay a node may wait before settling.
const MaxSettleDelay = time.Minute

// Transitions reports the cluster-wide occupancy and membership changes,
// each to one node only, decided atomically with the change itself so that
// joins and leaves racing on several nodes yield one report per change.
// A broker reports nothing until a handler is set; a shared broker also
// reports what it decides for a node it found dead (its vacated channels
// and removed members) to the survivor that removed it.
type Transitions interface {
	// SetTransitionHandler turns the reports on, for the apps that apps
	// accepts (nil: every app); the state a report needs (the pending
	// vacancies and removals) is kept for those apps only. It is called
	// once, before the first subscription.
	SetTransitionHandler(h TransitionHandler, apps func(appID string) bool)
	// Settle claims a pending transition after its delay: true when no
	// re-occupation or re-join cancelled it and nobody settled it before,
	// at most once per transition. The caller then reports it.
	Settle(ctx context.Context, t Transition) (bool, error)
}
