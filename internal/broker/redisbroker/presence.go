package redisbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"strconv"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/redis/rueidis"
)

// A presence connection is recorded under the field node+conn, so that
// socket ids need not be unique across nodes, and in the node's registry
// with everything the cleanup script needs to remove it, including the
// pre-encoded KindMemberRemoved it publishes.

func (b *Broker) presStripe(conn string) int {
	var h maphash.Hash
	h.SetSeed(workerSeed)
	h.WriteString(conn)
	return int(h.Sum64() % uint64(len(b.presLocks)))
}

func (b *Broker) presLock(conn string) func() {
	l := &b.presLocks[b.presStripe(conn)]
	l.Lock()
	return l.Unlock
}

func (b *Broker) joinExec(app, channel, conn string, m broker.Member, maxMembers int) rueidis.LuaExec {
	p := b.k.presence(app, channel)
	field := segs(b.node, conn)
	removed := broker.Message{Kind: broker.KindMemberRemoved, AppID: app, Channel: channel, UserID: m.UserID}
	pubch := b.k.pubsub(app, channel)
	pending := b.k.pendingRemoval(app, channel, m.UserID)
	return rueidis.LuaExec{
		Keys: append(p.list(), b.k.registry(b.node), b.k.nodes(), pending, b.k.claim(b.node)),
		Args: []string{field, m.UserID, string(m.Info), strconv.Itoa(max(maxMembers, 0)),
			"p" + segs(p.conns, field),
			segs(p.conns, p.counts, p.info, p.order, p.seq, field, m.UserID, string(broker.AppendWire(nil, &removed)), pubch,
				app, channel, pending, b.k.epochs()),
			b.node, b.deadline(), b.tracking(app), b.token, b.claimTTL()},
	}
}

// Join implements broker.PresenceManager with one script: limit check,
// first-connection test and the records, atomically.
func (b *Broker) Join(ctx context.Context, appID, channel, connID string, m broker.Member, maxMembers int) (bool, error) {
	if err := b.stopped(); err != nil {
		return false, err
	}
	c, err := b.conn(ctx, "presence join")
	if err != nil {
		return false, err
	}
	// Not under the connection's lock: it may wait a round trip.
	b.awaitCount(ctx, chanKey{appID, channel})
	unlock := b.presLock(connID)
	defer unlock()
	k := presKey{appID, channel, connID}
	// A leave of this connection that failed is done first: the join
	// script takes a connection still recorded for a repeated join, and
	// the user would not be a new member, never announced again.
	b.mu.Lock()
	pl, pending := b.leaves[k]
	b.mu.Unlock()
	if pending {
		// Rejoining as the same user, the removal is not announced: the
		// join makes the user a member again and says so. As another
		// user (a new subscribe with other channel_data), the old one
		// may have lost their last connection here: the script announces
		// it, or every member would keep them in their list for good.
		if _, _, err := b.runLeave(ctx, c, appID, channel, connID, pl.user, pl.user != m.UserID); err != nil {
			return false, b.fail("presence join", b.taken(err))
		}
		b.mu.Lock()
		delete(b.leaves, k)
		b.mu.Unlock()
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("redisbroker: presence join: %w", err)
	}
	first, report, err := b.runJoin(ctx, c, b.joinExec(appID, channel, connID, m, maxMembers))
	if err != nil {
		err = b.taken(err)
		if !notSent(err) && !errors.Is(err, ErrNodeIDTaken) {
			// It may have been applied: the leave that undoes it is
			// retried if it fails.
			b.mu.Lock()
			b.unsure[k] = struct{}{}
			b.mu.Unlock()
		}
		return false, b.fail("presence join", err)
	}
	if first < 0 {
		return false, broker.ErrMemberLimit
	}
	b.presMu.Lock()
	b.presence[k] = m
	b.presMu.Unlock()
	b.mu.Lock()
	delete(b.leaves, k)
	delete(b.unsure, k)
	b.mu.Unlock()
	if report {
		b.report(broker.Transition{Kind: broker.TransitionMemberAdded, AppID: appID, Channel: channel, UserID: m.UserID})
	}
	return first == 1, nil
}

// notSent reports whether a failed script call certainly changed nothing:
// Redis refused it with an error reply, or the connection to send it on
// could not be made.
func notSent(err error) bool {
	if _, ok := rueidis.IsRedisErr(err); ok {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

func (b *Broker) runJoin(ctx context.Context, c rueidis.Client, e rueidis.LuaExec) (int64, bool, error) {
	return b.joinResult(join.Exec(ctx, c, e.Keys, e.Args))
}

// joinResult reads the join script's reply: first (1, 0, -1 for the
// limit), and whether the new member is to be reported.
func (b *Broker) joinResult(r rueidis.RedisResult) (int64, bool, error) {
	res, err := r.ToArray()
	if err != nil {
		return 0, false, err
	}
	if len(res) != 3 {
		return 0, false, errors.New("unexpected join reply")
	}
	var n [3]int64
	for i := range n {
		if n[i], err = res[i].AsInt64(); err != nil {
			return 0, false, err
		}
	}
	b.sawAdded(n[1])
	return n[0], n[0] == 1 && n[2] == 1, nil
}

// Leave implements broker.PresenceManager. A leave that fails is retried
// in the background at every heartbeat, so that a connection gone during
// an outage does not stay a member.
func (b *Broker) Leave(ctx context.Context, appID, channel, connID, userID string) (bool, error) {
	k := presKey{appID, channel, connID}
	unlock := b.presLock(connID)
	defer unlock()
	b.presMu.Lock()
	m, joined := b.presence[k]
	delete(b.presence, k)
	b.presMu.Unlock()
	b.mu.Lock()
	_, unsure := b.unsure[k]
	delete(b.unsure, k)
	delete(b.announce, k)
	b.mu.Unlock()
	if err := b.stopped(); err != nil {
		// The records are the process's that holds the id now.
		return false, err
	}
	c, err := b.conn(ctx, "presence leave")
	if err == nil {
		var last, unrecorded bool
		last, unrecorded, err = b.runLeave(ctx, c, appID, channel, connID, userID, false)
		if err == nil {
			if unrecorded && joined && m.UserID == userID {
				// The node registers what it holds at once rather
				// than at its next heartbeat.
				b.resync.Store(true)
				kick(b.keeperKick)
				last = b.lostLeave(ctx, c, appID, channel, userID)
			}
			return last, nil
		}
		err = b.fail("presence leave", b.taken(err))
	}
	// Retried for a connection whose join succeeded, or failed in a way
	// that may have applied it all the same (a timeout): not for one
	// whose join certainly recorded nothing, so that what a client tries
	// during an outage leaves nothing behind.
	if (joined || unsure) && !errors.Is(err, broker.ErrClosed) && !errors.Is(err, ErrNodeIDTaken) {
		b.mu.Lock()
		b.leaves[k] = pendingLeave{userID, joined && m.UserID == userID}
		b.mu.Unlock()
	}
	return false, err
}

// lostLeave handles the leave of a connection whose join had succeeded
// (directly or retried) but which Redis no longer records:
// Redis lost the presence records (it restarted empty, say) after the
// join.
// The other subscribers had the user in their lists and would keep them
// there for good, so the user is reported as gone (the caller announces
// the removal, and a tracked app's webhook follows as for any last leave)
// unless another connection of theirs is still in the channel: here, or
// counted in Redis; one on a node that has not registered again yet is
// announced as added again when it does. Nor when the node was swept
// meanwhile: the sweep removed the connection and announced the removal.
func (b *Broker) lostLeave(ctx context.Context, c rueidis.Client, appID, channel, userID string) bool {
	b.presMu.Lock()
	for k, m := range b.presence {
		if k.app == appID && k.channel == channel && m.UserID == userID {
			b.presMu.Unlock()
			return false
		}
	}
	b.presMu.Unlock()
	keys := []string{b.k.presence(appID, channel).counts, b.k.pendingRemoval(appID, channel, userID), b.k.epochs(), b.k.swept(b.node), b.k.claim(b.node)}
	res, err := lostLeave.Exec(ctx, c, keys, []string{userID, b.tracking(appID), holdMS, b.token, b.claimTTL()}).AsIntSlice()
	if isTaken(err) {
		// Nothing of it is this node's to announce any more.
		b.taken(err)
		return false
	}
	if err != nil || len(res) != 2 {
		// Whether the user is still counted elsewhere is unknown: the
		// removal is announced, and corrected by an addition if not.
		b.noteFailure(err)
		return true
	}
	if res[0] == 1 && res[1] > 0 {
		b.report(broker.Transition{Kind: broker.TransitionMemberRemoved, AppID: appID, Channel: channel, UserID: userID, Epoch: res[1]})
	}
	return res[0] == 1
}

// runLeave runs the leave script; with announce, the script itself
// publishes KindMemberRemoved when the user lost its last connection. A
// member gone from the cluster is reported as a pending removal.
// unrecorded reports that Redis had no record of the connection.
func (b *Broker) runLeave(ctx context.Context, c rueidis.Client, appID, channel, connID, userID string, announce bool) (last, unrecorded bool, err error) {
	p := b.k.presence(appID, channel)
	field := segs(b.node, connID)
	args := []string{field, userID, "p" + segs(p.conns, field), b.tracking(appID), holdMS, b.token, b.claimTTL()}
	if announce {
		removed := broker.Message{Kind: broker.KindMemberRemoved, AppID: appID, Channel: channel, UserID: userID}
		args = append(args, string(broker.AppendWire(nil, &removed)), b.k.pubsub(appID, channel))
	}
	keys := append(p.list(), b.k.registry(b.node), b.k.pendingRemoval(appID, channel, userID), b.k.epochs(), b.k.claim(b.node))
	res, err := leave.Exec(ctx, c, keys, args).AsIntSlice()
	if err != nil {
		return false, false, err
	}
	if len(res) != 2 {
		return false, false, errors.New("unexpected leave reply")
	}
	if res[0] == 1 && res[1] > 0 {
		b.report(broker.Transition{Kind: broker.TransitionMemberRemoved, AppID: appID, Channel: channel, UserID: userID, Epoch: res[1]})
	}
	return res[0] == 1, res[0] == -1, nil
}

// retryLeaves redoes the leaves that failed, announcing the members who
// lost their last connection as LeavePresence would have, in the leave's
// script: a retried leave that went through and an announcement that did
// not would leave the member in every other subscriber's list.
func (b *Broker) retryLeaves(ctx context.Context, c rueidis.Client) error {
	b.mu.Lock()
	pending := make(map[presKey]pendingLeave, len(b.leaves))
	for k, pl := range b.leaves {
		pending[k] = pl
	}
	b.mu.Unlock()
	for k, pl := range pending {
		user := pl.user
		unlock := b.presLock(k.conn)
		b.mu.Lock()
		_, still := b.leaves[k]
		b.mu.Unlock()
		if !still {
			unlock()
			continue
		}
		_, unrecorded, err := b.runLeave(ctx, c, k.app, k.channel, k.conn, user, true)
		// Only for a connection whose join had succeeded, as for a
		// direct leave: one whose join failed in a way that may have
		// applied it (a timeout) and that Redis has no record of was,
		// far more likely, never recorded, and its user never announced.
		if err == nil && unrecorded && pl.joined && b.lostLeave(ctx, c, k.app, k.channel, user) {
			// The records were lost meanwhile: the script had nothing
			// to announce the removal from.
			removed := broker.Message{Kind: broker.KindMemberRemoved, AppID: k.app, Channel: k.channel, UserID: user}
			err = c.Do(ctx, c.B().Publish().Channel(b.k.pubsub(k.app, k.channel)).Message(string(broker.AppendWire(nil, &removed))).Build()).Error()
		}
		if err == nil {
			b.mu.Lock()
			delete(b.leaves, k)
			b.mu.Unlock()
		}
		unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// Members implements broker.PresenceManager.
func (b *Broker) Members(ctx context.Context, appID, channel string) ([]broker.Member, error) {
	c, err := b.conn(ctx, "presence members")
	if err != nil {
		return nil, err
	}
	p := b.k.presence(appID, channel)
	flat, err := members.Exec(ctx, c, []string{p.order, p.info}, nil).AsStrSlice()
	if err != nil {
		return nil, b.fail("presence members", err)
	}
	if len(flat)%2 != 0 {
		return nil, fmt.Errorf("redisbroker: presence members: odd reply")
	}
	if len(flat) == 0 {
		return nil, nil
	}
	out := make([]broker.Member, 0, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		m := broker.Member{UserID: flat[i]}
		if flat[i+1] != "" {
			m.Info = json.RawMessage(flat[i+1])
		}
		out = append(out, m)
	}
	return out, nil
}

// MemberCount implements broker.PresenceManager: HLEN of the per-user
// connection counts.
func (b *Broker) MemberCount(ctx context.Context, appID, channel string) (int, error) {
	c, err := b.conn(ctx, "presence member count")
	if err != nil {
		return 0, err
	}
	n, err := c.Do(ctx, c.B().Hlen().Key(b.k.presence(appID, channel).counts).Build()).AsInt64()
	if err != nil {
		return 0, b.fail("presence member count", err)
	}
	return int(n), nil
}
