package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/redis/rueidis"
)

// SetLocalUser implements broker.UserRegistry: like SetLocalCount, it
// records the count for the writer and does no I/O.
func (b *Broker) SetLocalUser(appID, userID string, n int) {
	k := chanKey{appID, userID}
	b.mu.Lock()
	if n > 0 {
		b.users[k] = n
	} else {
		delete(b.users, k)
	}
	b.dirtyUser[k] = struct{}{}
	b.mu.Unlock()
	kick(b.writeKick)
}

// writer flushes the counts and users changed since its last round, each
// key once with its latest value (many changes of one channel make one
// write), pipelined. A failed round leaves its keys dirty for the next.
//
// It starts once the control channel is subscribed, so that the node hears
// the user transitions its own first writes cause.
func (b *Broker) writer() {
	select {
	case <-b.ctlReady:
	case <-b.ctx.Done():
		return
	}
	b.clientMu.RLock()
	c := b.client
	b.clientMu.RUnlock()
	failures := 0
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.writeKick:
		}
		if b.stopped() != nil {
			return
		}
		if err := b.flush(c); err != nil {
			b.noteFailure(err)
			failures++
			if !b.sleep(backoff(failures)) {
				return
			}
			kick(b.writeKick)
			continue
		}
		failures = 0
	}
}

type countWrite struct {
	k    chanKey
	n    int
	sent bool // in usersSent or countsSent before this write
}

// unsent takes back the mark of a write that Redis certainly did not
// apply (refused, or never sent) and that was the key's first: Redis
// holds nothing of it, and an offline or vacancy written for it later
// would be announced as if its records had been lost. b.mu is held.
func unsent(sent map[chanKey]struct{}, w countWrite, err error) {
	if !w.sent && notSent(err) {
		delete(sent, w.k)
	}
}

func (b *Broker) flush(c rueidis.Client) error {
	b.mu.Lock()
	var cw, uw []countWrite
	for k := range b.dirtyCnt {
		if len(cw) == flushBatch {
			break
		}
		delete(b.dirtyCnt, k)
		n := b.counts[k]
		_, sent := b.countsSent[k]
		if n == 0 && !sent {
			continue // as for users below
		}
		if n > 0 {
			b.countsSent[k] = struct{}{}
		}
		b.writing[k] = struct{}{}
		cw = append(cw, countWrite{k, n, sent})
	}
	for k := range b.dirtyUser {
		if len(cw)+len(uw) >= flushBatch {
			break
		}
		delete(b.dirtyUser, k)
		n := b.users[k]
		_, sent := b.usersSent[k]
		if n == 0 && !sent {
			// Online and offline again before it was written: Redis
			// has nothing of it to remove, nor the cluster to hear.
			continue
		}
		if n > 0 {
			b.usersSent[k] = struct{}{}
		}
		uw = append(uw, countWrite{k, n, sent})
	}
	more := len(b.dirtyCnt)+len(b.dirtyUser) > 0
	b.mu.Unlock()
	if more {
		kick(b.writeKick)
	}
	if len(cw)+len(uw) == 0 {
		return nil
	}
	if len(cw) > 0 {
		// After the counts' transitions are reported, whatever the
		// outcome: a join waiting for its channel's count goes on.
		defer b.countsWritten(cw)
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.refresh)
	defer cancel()
	dl := b.deadline()
	reg := b.k.registry(b.node)
	claim, ttl := b.k.claim(b.node), b.claimTTL()
	var failed error
	redo := func(res []rueidis.RedisResult, ws []countWrite, dirty map[chanKey]struct{}) {
		for i, r := range res {
			added, err := r.AsInt64()
			if err != nil {
				failed = b.taken(err)
				b.mu.Lock()
				dirty[ws[i].k] = struct{}{}
				unsent(b.usersSent, ws[i], err)
				b.mu.Unlock()
				continue
			}
			if ws[i].n == 0 {
				b.mu.Lock()
				if b.users[ws[i].k] == 0 {
					delete(b.usersSent, ws[i].k)
				}
				b.mu.Unlock()
			}
			b.sawAdded(added)
		}
	}
	// Users before counts: once a count written after a user change is
	// visible, so is the user change.
	if len(uw) > 0 {
		execs := make([]rueidis.LuaExec, len(uw))
		for i, w := range uw {
			ukey := b.k.user(w.k.app, w.k.name)
			online := broker.Message{Kind: broker.KindUserOnline, AppID: w.k.app, UserID: w.k.name}
			offline := online
			offline.Kind = broker.KindUserOffline
			off := string(broker.AppendWire(nil, &offline))
			execs[i] = rueidis.LuaExec{
				Keys: []string{ukey, reg, b.k.nodes(), b.k.swept(b.node), claim},
				Args: []string{b.node, strconv.Itoa(w.n), "u" + ukey, segs(ukey, off, w.k.name),
					string(broker.AppendWire(nil, &online)), off, b.k.control(), dl, b.token, ttl},
			}
		}
		redo(setUser.ExecMulti(ctx, c, execs...), uw, b.dirtyUser)
	}
	if len(cw) > 0 {
		execs := make([]rueidis.LuaExec, len(cw))
		for i, w := range cw {
			occ, apps := b.k.occ(w.k.app, w.k.name), b.k.apps(w.k.app)
			vac := b.k.pendingVacancy(w.k.app, w.k.name)
			execs[i] = rueidis.LuaExec{
				Keys: []string{occ, apps, reg, b.k.nodes(), vac, b.k.epochs(), b.k.swept(b.node), claim},
				Args: []string{b.node, strconv.Itoa(w.n), w.k.name, "o" + occ,
					segs(occ, apps, w.k.name, w.k.app, vac, b.k.epochs()), dl, b.tracking(w.k.app), holdMS, b.token, ttl},
			}
		}
		for i, r := range setCount.ExecMulti(ctx, c, execs...) {
			res, err := r.AsIntSlice()
			if err == nil && len(res) != 4 {
				err = errors.New("unexpected count reply")
			}
			if err != nil {
				failed = b.taken(err)
				b.mu.Lock()
				b.dirtyCnt[cw[i].k] = struct{}{}
				unsent(b.countsSent, cw[i], err)
				b.mu.Unlock()
				continue
			}
			if cw[i].n == 0 {
				b.mu.Lock()
				if b.counts[cw[i].k] == 0 {
					delete(b.countsSent, cw[i].k)
				}
				b.mu.Unlock()
			}
			b.sawAdded(res[0])
			b.reportCount(cw[i].k, res[1], res[2], res[3])
		}
	}
	if failed != nil {
		return fmt.Errorf("redisbroker: writing counts: %w", failed)
	}
	return nil
}

// countsWritten ends the writes of cw and wakes the joins waiting for them.
func (b *Broker) countsWritten(cw []countWrite) {
	b.mu.Lock()
	for _, w := range cw {
		delete(b.writing, w.k)
	}
	close(b.written)
	b.written = make(chan struct{})
	b.mu.Unlock()
}

// FlushCounts waits until every subscription count this node changed has
// been written to Redis and what the writes decided (a channel vacated
// over the cluster, made pending for its webhook) has been reported, or
// until ctx ends or Redis is unreachable. A node shutting down calls it
// after its clients are gone and before its webhooks are flushed: Close
// removes what is left of the node without reporting anything, so a
// vacancy whose count had not reached Redis yet (one round trip after the
// last client left) would never be recorded, and its channel_vacated
// never sent by anyone. Users need nothing of the kind: Close's cleanup
// announces their going offline.
func (b *Broker) FlushCounts(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		b.mu.Lock()
		busy := len(b.dirtyCnt)+len(b.writing) > 0
		written := b.written
		b.mu.Unlock()
		if !busy {
			return nil
		}
		if !b.Connected() {
			return fmt.Errorf("redisbroker: flushing counts: %w", ErrNotConnected)
		}
		if err := b.stopped(); err != nil {
			return fmt.Errorf("redisbroker: flushing counts: %w", err)
		}
		kick(b.writeKick)
		select {
		case <-written:
		case <-tick.C: // Redis may have gone meanwhile
		case <-ctx.Done():
			return fmt.Errorf("redisbroker: flushing counts: %w", ctx.Err())
		case <-b.ctx.Done():
			return broker.ErrClosed
		}
	}
}

// countWait bounds how long a join waits for its channel's count.
const countWait = time.Second

// awaitCount waits, when transitions are reported, until the channel's
// latest local count has reached Redis (or countWait, or ctx): the first
// subscriber's node then reports the channel occupied before its member
// added, as Pusher orders them. The count is on its way already: the hub
// reports it before it joins.
func (b *Broker) awaitCount(ctx context.Context, k chanKey) {
	if b.tracking(k.app) == "" {
		return
	}
	limit := time.NewTimer(countWait)
	defer limit.Stop()
	for {
		b.mu.Lock()
		_, dirty := b.dirtyCnt[k]
		_, writing := b.writing[k]
		written := b.written
		b.mu.Unlock()
		if !dirty && !writing {
			return
		}
		select {
		case <-written:
		case <-ctx.Done():
			return
		case <-limit.C:
			return
		case <-b.ctx.Done():
			return
		}
	}
}

// reportCount reports what the count script decided for a channel: its
// occupation (ev 1), its new cluster total (total >= 0) and its vacancy
// (ev 2, pending with epoch), in that order.
func (b *Broker) reportCount(k chanKey, ev, epoch, total int64) {
	if b.trans.Load() == nil {
		return
	}
	if ev == 1 {
		b.report(broker.Transition{Kind: broker.TransitionOccupied, AppID: k.app, Channel: k.name})
	}
	if total >= 0 {
		b.report(broker.Transition{Kind: broker.TransitionCount, AppID: k.app, Channel: k.name, Count: int(total)})
	}
	if ev == 2 {
		b.report(broker.Transition{Kind: broker.TransitionVacated, AppID: k.app, Channel: k.name, Epoch: epoch})
	}
}

// SubscriptionCount implements broker.Occupancy: one HGET of the app's
// totals, which the count script maintains.
func (b *Broker) SubscriptionCount(ctx context.Context, appID, channel string) (int, error) {
	c, err := b.conn(ctx, "subscription count")
	if err != nil {
		return 0, err
	}
	n, err := c.Do(ctx, c.B().Hget().Key(b.k.apps(appID)).Field(channel).Build()).AsInt64()
	if rueidis.IsRedisNil(err) {
		return 0, nil
	}
	if err != nil {
		return 0, b.fail("subscription count", err)
	}
	return int(n), nil
}

// Channels implements broker.Occupancy: one HGETALL of the app's totals,
// filtered by prefix and sorted here.
func (b *Broker) Channels(ctx context.Context, appID, prefix string) ([]broker.ChannelCount, error) {
	c, err := b.conn(ctx, "channels")
	if err != nil {
		return nil, err
	}
	all, err := c.Do(ctx, c.B().Hgetall().Key(b.k.apps(appID)).Build()).AsIntMap()
	if err != nil {
		return nil, b.fail("channels", err)
	}
	var out []broker.ChannelCount
	for name, n := range all {
		if n > 0 && strings.HasPrefix(name, prefix) {
			out = append(out, broker.ChannelCount{Name: name, Subscriptions: int(n)})
		}
	}
	slices.SortFunc(out, func(a, b broker.ChannelCount) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// OnlineUsers implements broker.UserRegistry: pipelined EXISTS, one per id.
func (b *Broker) OnlineUsers(ctx context.Context, appID string, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	c, err := b.conn(ctx, "online users")
	if err != nil {
		return nil, err
	}
	cmds := make(rueidis.Commands, len(ids))
	for i, id := range ids {
		cmds[i] = c.B().Exists().Key(b.k.user(appID, id)).Build()
	}
	var out []string
	for i, r := range c.DoMulti(ctx, cmds...) {
		n, err := r.AsInt64()
		if err != nil {
			return nil, b.fail("online users", err)
		}
		if n > 0 {
			out = append(out, ids[i])
		}
	}
	return out, nil
}

// heartbeatRetry is how long the keeper waits before trying a heartbeat
// again after failures consecutive failed ones before the last: a second,
// doubling, at most refresh.
func heartbeatRetry(failures int, refresh time.Duration) time.Duration {
	d := time.Second << min(failures, 16)
	return min(d, refresh)
}

// keeper heartbeats and sweeps every Refresh, and re-registers the node
// when its registration was found missing.
func (b *Broker) keeper() {
	select {
	case <-b.connected:
	case <-b.ctx.Done():
		return
	}
	t := time.NewTicker(b.refresh)
	defer t.Stop()
	// A node sweeps only after a Refresh of successful heartbeats: after
	// an outage longer than the TTL every deadline has passed, and the
	// other nodes need one round to refresh theirs before anyone judges
	// them dead.
	var upSince time.Time
	// A failed heartbeat is tried again within a second, not a Refresh
	// later: one kicked when the subscriptions came back may meet a
	// command connection that is still reconnecting, and the node's state
	// must be registered again as soon as Redis takes it. Failing again,
	// it waits twice as long each time, up to a Refresh: a Redis that
	// keeps refusing (out of memory, say) is not sent the node's whole
	// registration every second.
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	failures := 0
	for {
		ctx, cancel := context.WithTimeout(b.ctx, b.refresh)
		if err := b.Heartbeat(ctx); err != nil {
			upSince = time.Time{}
			retry.Reset(heartbeatRetry(failures, b.refresh))
			failures++
		} else {
			failures = 0
			if upSince.IsZero() {
				upSince = b.now()
			}
			if b.now().Sub(upSince) >= b.refresh {
				if err := b.Sweep(ctx); err != nil && b.ctx.Err() == nil {
					b.log.Debug("sweep failed", "err", err)
				}
			}
		}
		cancel()
		if b.stopped() != nil {
			// Another process holds the node id: its heartbeats are
			// the id's now.
			return
		}
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		case <-b.keeperKick:
		case <-retry.C:
		}
		retry.Stop()
	}
}
