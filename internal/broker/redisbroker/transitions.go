package redisbroker

import (
	"context"
	"fmt"
	"strconv"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/redis/rueidis"
)

// Transitions are decided by the scripts that change the state they
// depend on: the count script sees a channel's cluster total go from 0 to
// n or back, the join script a user's first connection anywhere, the
// leave script its last, the cleanup script both for a dead node's share.
// The node whose script saw the change reports it. A vacancy or removal is
// recorded as pending (a key holding its epoch, for broker.PendingHold),
// which a re-occupation or first re-join deletes instead of reporting
// itself, and which Settle claims with compare-and-delete: each is
// reported once and claimed at most once over the cluster.

// transitions is the handler and the apps it is for.
type transitions struct {
	h    broker.TransitionHandler
	apps func(appID string) bool // nil: every app
}

// SetTransitionHandler implements broker.Transitions.
func (b *Broker) SetTransitionHandler(h broker.TransitionHandler, apps func(appID string) bool) {
	if h == nil {
		b.trans.Store(nil)
		return
	}
	b.trans.Store(&transitions{h, apps})
}

// tracking is the scripts' track argument for app ("" for every app: the
// cleanup of a dead node, whose registrations span apps).
func (b *Broker) tracking(app string) string {
	t := b.trans.Load()
	if t == nil || app != "" && t.apps != nil && !t.apps(app) {
		return ""
	}
	return "1"
}

var holdMS = strconv.FormatInt(broker.PendingHold.Milliseconds(), 10)

// report hands t to the transition handler, if any.
func (b *Broker) report(t broker.Transition) {
	if tr := b.trans.Load(); tr != nil && (tr.apps == nil || tr.apps(t.AppID)) {
		tr.h(t)
	}
}

// Settle implements broker.Transitions with one compare-and-delete.
func (b *Broker) Settle(ctx context.Context, t broker.Transition) (bool, error) {
	var key string
	switch t.Kind {
	case broker.TransitionVacated:
		key = b.k.pendingVacancy(t.AppID, t.Channel)
	case broker.TransitionMemberRemoved:
		key = b.k.pendingRemoval(t.AppID, t.Channel, t.UserID)
	default:
		return false, fmt.Errorf("redisbroker: settle: %v is not a pending transition", t.Kind)
	}
	c, err := b.conn(ctx, "settle")
	if err != nil {
		return false, err
	}
	n, err := settle.Exec(ctx, c, []string{key}, []string{strconv.FormatInt(t.Epoch, 10)}).AsInt64()
	if err != nil {
		return false, b.fail("settle", err)
	}
	return n == 1, nil
}

// reportCleanup reports the transitions a cleanup script returned after
// its four counts: kind, app, channel, user, epoch for each.
func (b *Broker) reportCleanup(res []rueidis.RedisMessage) {
	for i := 4; i+5 <= len(res); i += 5 {
		var f [5]string
		for j := range f {
			f[j], _ = res[i+j].ToString()
		}
		epoch, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil {
			continue
		}
		t := broker.Transition{AppID: f[1], Channel: f[2], UserID: f[3], Epoch: epoch}
		switch f[0] {
		case "v":
			t.Kind = broker.TransitionVacated
		case "m":
			t.Kind = broker.TransitionMemberRemoved
		default:
			continue
		}
		b.report(t)
	}
}

// cleanupCounts reads the four counts of a cleanup script's reply.
func cleanupCounts(res []rueidis.RedisMessage) ([4]int64, bool) {
	var out [4]int64
	if len(res) < 4 {
		return out, false
	}
	for i := range out {
		n, err := res[i].AsInt64()
		if err != nil {
			return out, false
		}
		out[i] = n
	}
	return out, true
}
