package redisbroker

import (
	"context"
	"strconv"
	"time"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/redis/rueidis"
)

// Heartbeat refreshes this node's claim of its id and its deadline in the
// node set. When the node was missing (Redis restarted empty, or the
// survivors of a partition swept it), or a script found it missing, it
// re-registers everything the node holds. When another process holds the
// id, the broker stops (ErrNodeIDTaken). The broker calls it every
// Refresh; tests call it directly.
func (b *Broker) Heartbeat(ctx context.Context) error {
	if err := b.stopped(); err != nil {
		return err
	}
	c, err := b.conn(ctx, "heartbeat")
	if err != nil {
		return err
	}
	added, err := heartbeat.Exec(ctx, c, []string{b.k.nodes(), b.k.claim(b.node)},
		[]string{b.deadline(), b.node, b.token, b.claimTTL()}).AsInt64()
	if err != nil {
		return b.fail("heartbeat", b.taken(err))
	}
	b.markUp()
	if added == 1 || b.resync.Swap(false) {
		if err := b.reregister(ctx, b.registered.Swap(true)); err != nil {
			b.resync.Store(true)
			return b.fail("re-registering", err)
		}
	}
	if err := b.announceRejoined(ctx, c); err != nil {
		return b.fail("announcing members registered again", err)
	}
	if err := b.retryLeaves(ctx, c); err != nil {
		return b.fail("retrying presence leaves", b.taken(err))
	}
	return nil
}

// reregister writes the whole local mirror again: counts and users through
// the writer, presence connections here, announcing the members who became
// new again.
func (b *Broker) reregister(ctx context.Context, again bool) error {
	c, err := b.conn(ctx, "re-registering")
	if err != nil {
		return err
	}
	b.mu.Lock()
	for k := range b.counts {
		b.dirtyCnt[k] = struct{}{}
	}
	for k := range b.users {
		b.dirtyUser[k] = struct{}{}
	}
	nc, nu := len(b.counts), len(b.users)
	b.mu.Unlock()
	kick(b.writeKick)

	// Presence connections are rewritten one lock stripe at a time,
	// pipelined, so that a join or leave of one of them cannot interleave.
	b.presMu.Lock()
	stripes := make([][]presKey, len(b.presLocks))
	total := len(b.presence)
	for k := range b.presence {
		i := b.presStripe(k.conn)
		stripes[i] = append(stripes[i], k)
	}
	b.presMu.Unlock()
	nadded := 0
	for i, ks := range stripes {
		for len(ks) > 0 {
			chunk := ks[:min(len(ks), flushBatch)]
			ks = ks[len(chunk):]
			b.presLocks[i].Lock()
			var execs []rueidis.LuaExec
			var ks2 []presKey
			var ms []broker.Message
			b.presMu.Lock()
			for _, k := range chunk {
				if m, ok := b.presence[k]; ok {
					execs = append(execs, b.joinExec(k.app, k.channel, k.conn, m, 0))
					ks2 = append(ks2, k)
					ms = append(ms, broker.Message{Kind: broker.KindMemberAdded, AppID: k.app, Channel: k.channel,
						UserID: m.UserID, Data: string(m.Info), Exclude: k.conn})
				}
			}
			b.presMu.Unlock()
			var res []rueidis.RedisResult
			if len(execs) > 0 {
				res = join.ExecMulti(ctx, c, execs...)
			}
			var err error
			for j, r := range res {
				first, report, jerr := b.joinResult(r)
				if jerr != nil {
					err = b.taken(jerr)
					continue
				}
				if report {
					k := ks2[j]
					b.report(broker.Transition{Kind: broker.TransitionMemberAdded, AppID: k.app, Channel: k.channel, UserID: ms[j].UserID})
				}
				if first == 1 {
					// Members who became new again: their earlier
					// record was lost, so other nodes may have
					// announced their removal. Kept until announced:
					// a join of a connection already in is no first
					// one, however often the re-registration is redone.
					b.mu.Lock()
					b.announce[ks2[j]] = ms[j]
					b.mu.Unlock()
					nadded++
				}
			}
			b.presLocks[i].Unlock()
			if err != nil {
				return err
			}
		}
	}
	if err := b.announceRejoined(ctx, c); err != nil {
		return err
	}
	if !again {
		return nil
	}
	b.log.Info("registration was missing from redis; registered again",
		"channels", nc, "users", nu, "presence_connections", total, "members_announced", nadded)
	return nil
}

// announceRejoined publishes the KindMemberAdded of the members a
// re-registration made new again, one lock stripe at a time and
// pipelined, dropping those whose connection left meanwhile (their leave
// announces the removal, which must not come before). What fails stays
// for the next heartbeat.
func (b *Broker) announceRejoined(ctx context.Context, c rueidis.Client) error {
	b.mu.Lock()
	if len(b.announce) == 0 {
		b.mu.Unlock()
		return nil
	}
	stripes := make([][]presKey, len(b.presLocks))
	for k := range b.announce {
		i := b.presStripe(k.conn)
		stripes[i] = append(stripes[i], k)
	}
	b.mu.Unlock()
	for i, ks := range stripes {
		for len(ks) > 0 {
			chunk := ks[:min(len(ks), flushBatch)]
			ks = ks[len(chunk):]
			b.presLocks[i].Lock()
			var cmds rueidis.Commands
			var sent []presKey
			b.presMu.Lock()
			b.mu.Lock()
			for _, k := range chunk {
				m, ok := b.announce[k]
				if !ok {
					continue
				}
				if _, in := b.presence[k]; !in {
					delete(b.announce, k)
					continue
				}
				wire := string(broker.AppendWire(nil, &m))
				cmds = append(cmds, c.B().Publish().Channel(b.k.pubsub(m.AppID, m.Channel)).Message(wire).Build())
				sent = append(sent, k)
			}
			b.mu.Unlock()
			b.presMu.Unlock()
			var err error
			if len(cmds) > 0 {
				for j, r := range c.DoMulti(ctx, cmds...) {
					if rerr := r.Error(); rerr != nil {
						err = rerr
						continue
					}
					b.mu.Lock()
					delete(b.announce, sent[j])
					b.mu.Unlock()
				}
			}
			b.presLocks[i].Unlock()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// sweptTTL is how long a swept node's marker lasts: a node back from a
// partition within it does not announce again what its sweep announced.
// One longer away may (a second member_removed, user offline or
// channel_vacated). The marker of a node that never comes back goes with
// it.
const sweptTTL = 24 * time.Hour

var sweptMS = strconv.FormatInt(sweptTTL.Milliseconds(), 10)

// Sweep removes the nodes whose deadline has passed, with everything they
// registered. Several nodes may sweep at once: the cleanup script lets
// exactly one of them remove each dead node.
func (b *Broker) Sweep(ctx context.Context) error {
	if err := b.stopped(); err != nil {
		return err
	}
	c, err := b.conn(ctx, "sweep")
	if err != nil {
		return err
	}
	now := strconv.FormatInt(b.now().UnixMilli(), 10)
	dead, err := c.Do(ctx, c.B().Zrangebyscore().Key(b.k.nodes()).Min("-inf").Max(now).Build()).AsStrSlice()
	if err != nil {
		return b.fail("sweep", err)
	}
	for _, node := range dead {
		if node == b.node {
			// Our own deadline passed (a stalled heartbeat): the next
			// heartbeat refreshes it; never remove ourselves.
			continue
		}
		res, err := cleanup.Exec(ctx, c, []string{b.k.nodes(), b.k.registry(node), b.k.swept(node)},
			[]string{node, now, b.k.control(), b.tracking(""), holdMS, sweptMS}).ToArray()
		if err != nil {
			return b.fail("sweep", err)
		}
		if n, ok := cleanupCounts(res); ok && n[0] == 1 {
			// This node removed the dead one: the vacancies and removals
			// it owed are this node's to report.
			b.reportCleanup(res)
			b.log.Info("removed a node that stopped refreshing its registration",
				"dead_node", node, "channels", n[1], "users_offline", n[2], "members_removed", n[3])
		}
	}
	return nil
}
