package redisbroker

import (
	"context"
	"strconv"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/redis/rueidis"
)

// Heartbeat refreshes this node's deadline in the node set. When the node
// was missing (Redis restarted empty, or the survivors of a partition
// swept it), or a script found it missing, it re-registers everything the
// node holds. The broker calls it every Refresh; tests call it directly.
func (b *Broker) Heartbeat(ctx context.Context) error {
	c, err := b.conn(ctx, "heartbeat")
	if err != nil {
		return err
	}
	added, err := c.Do(ctx, c.B().Zadd().Key(b.k.nodes()).ScoreMember().
		ScoreMember(float64(b.now().Add(b.nodeTTL).UnixMilli()), b.node).Build()).AsInt64()
	if err != nil {
		return b.fail("heartbeat", err)
	}
	b.markUp()
	if added == 1 || b.resync.Swap(false) {
		if err := b.reregister(ctx, b.registered.Swap(true)); err != nil {
			b.resync.Store(true)
			return b.fail("re-registering", err)
		}
	}
	if err := b.retryLeaves(ctx, c); err != nil {
		return b.fail("retrying presence leaves", err)
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
	var added []broker.Message
	for i, ks := range stripes {
		for len(ks) > 0 {
			chunk := ks[:min(len(ks), flushBatch)]
			ks = ks[len(chunk):]
			b.presLocks[i].Lock()
			var execs []rueidis.LuaExec
			var ms []broker.Message
			b.presMu.Lock()
			for _, k := range chunk {
				if m, ok := b.presence[k]; ok {
					execs = append(execs, b.joinExec(k.app, k.channel, k.conn, m, 0))
					ms = append(ms, broker.Message{Kind: broker.KindMemberAdded, AppID: k.app, Channel: k.channel,
						UserID: m.UserID, Data: string(m.Info), Exclude: k.conn})
				}
			}
			b.presMu.Unlock()
			var res []rueidis.RedisResult
			if len(execs) > 0 {
				res = join.ExecMulti(ctx, c, execs...)
			}
			b.presLocks[i].Unlock()
			for j, r := range res {
				first, err := b.joinResult(r)
				if err != nil {
					return err
				}
				if first == 1 {
					added = append(added, ms[j])
				}
			}
		}
	}
	// Members who became new again: their earlier record was lost, so
	// other nodes may have announced their removal.
	for _, m := range added {
		if err := b.Publish(ctx, m); err != nil {
			return err
		}
	}
	if !again {
		return nil
	}
	b.log.Info("registration was missing from redis; registered again",
		"channels", nc, "users", nu, "presence_connections", total, "members_announced", len(added))
	return nil
}

// Sweep removes the nodes whose deadline has passed, with everything they
// registered. Several nodes may sweep at once: the cleanup script lets
// exactly one of them remove each dead node.
func (b *Broker) Sweep(ctx context.Context) error {
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
		res, err := cleanup.Exec(ctx, c, []string{b.k.nodes(), b.k.registry(node)},
			[]string{node, now, b.k.control()}).AsIntSlice()
		if err != nil {
			return b.fail("sweep", err)
		}
		if len(res) == 4 && res[0] == 1 {
			b.log.Info("removed a node that stopped refreshing its registration",
				"dead_node", node, "channels", res[1], "users_offline", res[2], "members_removed", res[3])
		}
	}
	return nil
}
