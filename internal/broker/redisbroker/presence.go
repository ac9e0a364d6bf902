package redisbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
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
	return rueidis.LuaExec{
		Keys: append(p.list(), b.k.registry(b.node), b.k.nodes()),
		Args: []string{field, m.UserID, string(m.Info), strconv.Itoa(max(maxMembers, 0)),
			"p" + segs(p.conns, field),
			segs(p.conns, p.counts, p.info, p.order, p.seq, field, m.UserID, string(broker.AppendWire(nil, &removed)), pubch),
			b.node, b.deadline()},
	}
}

// Join implements broker.PresenceManager with one script: limit check,
// first-connection test and the records, atomically.
func (b *Broker) Join(ctx context.Context, appID, channel, connID string, m broker.Member, maxMembers int) (bool, error) {
	c, err := b.conn(ctx, "presence join")
	if err != nil {
		return false, err
	}
	unlock := b.presLock(connID)
	defer unlock()
	first, err := b.runJoin(ctx, c, b.joinExec(appID, channel, connID, m, maxMembers))
	if err != nil {
		return false, b.fail("presence join", err)
	}
	if first < 0 {
		return false, broker.ErrMemberLimit
	}
	k := presKey{appID, channel, connID}
	b.presMu.Lock()
	b.presence[k] = m
	b.presMu.Unlock()
	b.mu.Lock()
	delete(b.leaves, k)
	b.mu.Unlock()
	return first == 1, nil
}

func (b *Broker) runJoin(ctx context.Context, c rueidis.Client, e rueidis.LuaExec) (int64, error) {
	return b.joinResult(join.Exec(ctx, c, e.Keys, e.Args))
}

func (b *Broker) joinResult(r rueidis.RedisResult) (int64, error) {
	res, err := r.ToArray()
	if err != nil {
		return 0, err
	}
	if len(res) != 2 {
		return 0, errors.New("unexpected join reply")
	}
	first, err := res[0].AsInt64()
	if err != nil {
		return 0, err
	}
	added, err := res[1].AsInt64()
	if err != nil {
		return 0, err
	}
	b.sawAdded(added)
	return first, nil
}

// Leave implements broker.PresenceManager. A leave that fails is retried
// in the background at every heartbeat, so that a connection gone during
// an outage does not stay a member.
func (b *Broker) Leave(ctx context.Context, appID, channel, connID, userID string) (bool, error) {
	k := presKey{appID, channel, connID}
	unlock := b.presLock(connID)
	defer unlock()
	b.presMu.Lock()
	delete(b.presence, k)
	b.presMu.Unlock()
	c, err := b.conn(ctx, "presence leave")
	if err == nil {
		var last bool
		last, err = b.runLeave(ctx, c, appID, channel, connID, userID)
		if err == nil {
			return last, nil
		}
		err = b.fail("presence leave", err)
	}
	// Retried even for a connection this node never saw joined: a join
	// that timed out may have been applied all the same.
	if !errors.Is(err, broker.ErrClosed) {
		b.mu.Lock()
		b.leaves[k] = userID
		b.mu.Unlock()
	}
	return false, err
}

func (b *Broker) runLeave(ctx context.Context, c rueidis.Client, appID, channel, connID, userID string) (bool, error) {
	p := b.k.presence(appID, channel)
	field := segs(b.node, connID)
	n, err := leave.Exec(ctx, c, append(p.list(), b.k.registry(b.node)),
		[]string{field, userID, "p" + segs(p.conns, field)}).AsInt64()
	return n == 1, err
}

// retryLeaves redoes the leaves that failed, announcing the members who
// lost their last connection as LeavePresence would have.
func (b *Broker) retryLeaves(ctx context.Context, c rueidis.Client) error {
	b.mu.Lock()
	pending := make(map[presKey]string, len(b.leaves))
	for k, u := range b.leaves {
		pending[k] = u
	}
	b.mu.Unlock()
	for k, user := range pending {
		unlock := b.presLock(k.conn)
		b.mu.Lock()
		_, still := b.leaves[k]
		b.mu.Unlock()
		if !still {
			unlock()
			continue
		}
		last, err := b.runLeave(ctx, c, k.app, k.channel, k.conn, user)
		if err == nil {
			b.mu.Lock()
			delete(b.leaves, k)
			b.mu.Unlock()
		}
		unlock()
		if err != nil {
			return err
		}
		if last {
			if err := b.Publish(ctx, broker.Message{Kind: broker.KindMemberRemoved, AppID: k.app, Channel: k.channel, UserID: user}); err != nil {
				return err
			}
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
