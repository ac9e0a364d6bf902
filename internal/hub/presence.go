package hub

import (
	"context"
	"errors"
	"fmt"

	"github.com/heraldhq/herald/internal/broker"
)

// Presence is protocol-neutral: membership is by user (two connections of
// one user are one member), the first connection of a user announces the
// member and the last one's departure announces its removal. Every method
// here may wait on the broker, so front ends call them off the transport's
// loop (Conn.Do), never from a Handler method.

// JoinPresence records c as a connection of member m in a presence channel
// of at most maxMembers users (<= 0: no limit) and returns the channel's
// members afterwards. first is true when m is a new member; the caller
// confirms the subscription to its client and then calls AnnounceJoin, so
// that the joiner's confirmation leaves before anyone hears of it. It
// returns broker.ErrMemberLimit when the channel is full.
func (h *Hub) JoinPresence(ctx context.Context, c *Conn, name string, m broker.Member, maxMembers int) (first bool, members []broker.Member, err error) {
	first, err = h.broker.Join(ctx, c.app.id, name, c.SocketID(), m, maxMembers)
	if err == nil {
		members, err = h.broker.Members(ctx, c.app.id, name)
		if err != nil {
			err = fmt.Errorf("presence members: %w", err)
		}
	}
	if err != nil && !errors.Is(err, broker.ErrMemberLimit) {
		// The join may have been recorded (Members failed, or Join ran out
		// of time after the backend applied it): undo it, or the
		// connection would stay a member nobody ever removes.
		h.undoJoin(c, name, m.UserID)
		return false, nil, err
	}
	return first, members, err
}

// undoJoin removes a join whose confirmation failed, with a context of its
// own: the join's may be what ran out. Nobody was told of the member, so
// nobody is told it left.
func (h *Hub) undoJoin(c *Conn, name, userID string) {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.OpTimeout)
	defer cancel()
	h.broker.Leave(ctx, c.app.id, name, c.SocketID(), userID)
}

// AnnounceJoin tells the channel's other subscribers, on every node, that
// m joined, and emits EventMemberAdded.
func (h *Hub) AnnounceJoin(ctx context.Context, c *Conn, name string, m broker.Member) error {
	err := h.broker.Publish(ctx, broker.Message{
		Kind: broker.KindMemberAdded, AppID: c.app.id, Channel: name,
		UserID: m.UserID, Data: string(m.Info), Exclude: c.SocketID(),
	})
	if err != nil {
		return fmt.Errorf("announce member: %w", err)
	}
	h.emit(Event{Type: EventMemberAdded, AppID: c.app.id, Channel: name, UserID: m.UserID, SocketID: c.SocketID()})
	return nil
}

// LeavePresence removes c's membership of a presence channel as userID;
// when it was the user's last connection there, the channel's remaining
// subscribers hear of the removal and EventMemberRemoved is emitted.
func (h *Hub) LeavePresence(ctx context.Context, c *Conn, name, userID string) error {
	last, err := h.broker.Leave(ctx, c.app.id, name, c.SocketID(), userID)
	if err != nil {
		return fmt.Errorf("presence leave: %w", err)
	}
	if !last {
		return nil
	}
	err = h.broker.Publish(ctx, broker.Message{
		Kind: broker.KindMemberRemoved, AppID: c.app.id, Channel: name, UserID: userID,
	})
	if err != nil {
		return fmt.Errorf("announce member removal: %w", err)
	}
	h.emit(Event{Type: EventMemberRemoved, AppID: c.app.id, Channel: name, UserID: userID, SocketID: c.SocketID()})
	return nil
}

// Members lists a presence channel's members in join order.
func (h *Hub) Members(ctx context.Context, appID, name string) ([]broker.Member, error) {
	return h.broker.Members(ctx, appID, name)
}

// MemberCount is the number of distinct users of a presence channel, over
// every node.
func (h *Hub) MemberCount(ctx context.Context, appID, name string) (int, error) {
	return h.broker.MemberCount(ctx, appID, name)
}

// CachedEvent returns a cache channel's last event for a new subscriber,
// and emits EventCacheMiss when there is none. It may wait on the broker.
func (h *Hub) CachedEvent(ctx context.Context, appID, name string) (broker.Cached, bool, error) {
	c, ok, err := h.broker.LastEvent(ctx, appID, name)
	if err == nil && !ok {
		h.emit(Event{Type: EventCacheMiss, AppID: appID, Channel: name})
	}
	return c, ok, err
}

// LastEvent returns a cache channel's last event and the time it has left,
// without counting a miss (the REST API's info=cache).
func (h *Hub) LastEvent(ctx context.Context, appID, name string) (broker.Cached, bool, error) {
	return h.broker.LastEvent(ctx, appID, name)
}
