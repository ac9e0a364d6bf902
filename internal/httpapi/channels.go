package httpapi

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/heraldhq/herald/internal/channel"
)

// infoSet is the set of attributes an `info` parameter asks for.
type infoSet uint8

const (
	infoUserCount infoSet = 1 << iota
	infoSubscriptionCount
	infoCache
)

// parseInfo reads a comma-separated info list. Unknown attributes are
// ignored, so that a client asking for something newer still gets the rest.
func parseInfo(s string) (infoSet, error) {
	var set infoSet
	if len(s) > 256 {
		return 0, fmt.Errorf("info is longer than 256 characters")
	}
	for attr := range strings.SplitSeq(s, ",") {
		switch strings.TrimSpace(attr) {
		case "user_count":
			set |= infoUserCount
		case "subscription_count":
			set |= infoSubscriptionCount
		case "cache":
			set |= infoCache
		}
	}
	return set, nil
}

// channelInfo is one channel's attributes in an API response; only the
// requested ones are present.
type channelInfo struct {
	Occupied          *bool      `json:"occupied,omitempty"`
	UserCount         *int       `json:"user_count,omitempty"`
	SubscriptionCount *int       `json:"subscription_count,omitempty"`
	Cache             *cacheInfo `json:"cache,omitempty"`
}

// cacheInfo is a cache channel's remembered event and the seconds it has left.
type cacheInfo struct {
	Event string `json:"event"`
	Data  string `json:"data"`
	TTL   int    `json:"ttl"`
}

// info gathers the attributes in set for one channel. With strict, asking
// for an attribute the channel cannot have is a 400 (the single-channel
// query); without, such attributes are left out (trigger responses).
func (a *API) info(r request, ch channel.Channel, set infoSet, strict bool) (channelInfo, error) {
	var out channelInfo
	if set&infoUserCount != 0 {
		if ch.Kind == channel.Presence {
			n, err := a.cfg.Hub.MemberCount(r.Context(), r.app.ID, ch.Name)
			if err != nil {
				return out, fmt.Errorf("presence member count of %s: %w", ch.Name, err)
			}
			out.UserCount = &n
		} else if strict {
			return out, refuse(http.StatusBadRequest, "Cannot retrieve the user count unless the channel is a presence channel")
		}
	}
	if set&infoSubscriptionCount != 0 {
		n, err := a.cfg.Hub.ClusterSubscriptionCount(r.Context(), r.app.ID, ch.Name)
		if err != nil {
			return out, fmt.Errorf("subscription count of %s: %w", ch.Name, err)
		}
		out.SubscriptionCount = &n
	}
	if set&infoCache != 0 {
		if ch.Cache {
			c, err := a.cacheInfo(r, ch.Name)
			if err != nil {
				return out, err
			}
			out.Cache = c
		} else if strict {
			return out, refuse(http.StatusBadRequest, "Cannot retrieve the cache unless the channel is a cache channel")
		}
	}
	return out, nil
}

func (a *API) cacheInfo(r request, name string) (*cacheInfo, error) {
	m, ok, err := a.cfg.Hub.LastEvent(r.Context(), r.app.ID, name)
	if err != nil {
		return nil, fmt.Errorf("cached event of %s: %w", name, err)
	}
	if !ok {
		return nil, nil
	}
	return &cacheInfo{Event: m.Event, Data: m.Data, TTL: int(math.Ceil(m.TTL.Seconds()))}, nil
}

// parseChannelParam validates the {channel_name} path segment.
func parseChannelParam(r request) (channel.Channel, error) {
	name := r.PathValue("channel_name")
	ch, err := channel.Parse(name, r.app.MaxChannelNameLength)
	if err != nil {
		return ch, refuse(http.StatusBadRequest, "invalid channel name %q: %v", truncate(name, 64), err)
	}
	return ch, nil
}

// queryFailed is the answer to a channel query that failed: a refusal
// stays one, and the broker's failure is a 503, for the backend may retry
// a read. (The info of a trigger that was published is not: a failure
// there must not invite a retry that publishes the event twice.)
func queryFailed(err error) error {
	var e *errResponse
	if errors.As(err, &e) {
		return err
	}
	return unavailable("reading the channel's state", err)
}

// channels is GET /apps/{app_id}/channels: the occupied channels, filtered
// by prefix, each with the requested counts.
func (a *API) channels(r request) (any, error) {
	q := r.URL.Query()
	prefix := q.Get("filter_by_prefix")
	set, err := parseInfo(q.Get("info"))
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "%v", err)
	}
	set &^= infoCache
	if set&infoUserCount != 0 && !strings.HasPrefix(prefix, "presence-") {
		return nil, refuse(http.StatusBadRequest, "user_count may only be requested when filter_by_prefix limits the request to presence- channels")
	}
	occupied, err := a.cfg.Hub.ClusterChannels(r.Context(), r.app.ID, prefix)
	if err != nil {
		return nil, unavailable("listing the occupied channels", err)
	}
	out := map[string]channelInfo{}
	for _, cc := range occupied {
		var info channelInfo
		if set&infoUserCount != 0 {
			if ch, err := channel.Parse(cc.Name, math.MaxInt); err == nil {
				if info, err = a.info(r, ch, infoUserCount, false); err != nil {
					return nil, queryFailed(err)
				}
			}
		}
		if set&infoSubscriptionCount != 0 {
			n := cc.Subscriptions
			info.SubscriptionCount = &n
		}
		out[cc.Name] = info
	}
	return map[string]any{"channels": out}, nil
}

// channel is GET /apps/{app_id}/channels/{channel_name}.
func (a *API) channel(r request) (any, error) {
	ch, err := parseChannelParam(r)
	if err != nil {
		return nil, err
	}
	set, err := parseInfo(r.URL.Query().Get("info"))
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "%v", err)
	}
	info, err := a.info(r, ch, set|infoSubscriptionCount, true)
	if err != nil {
		return nil, queryFailed(err)
	}
	occupied := *info.SubscriptionCount > 0
	info.Occupied = &occupied
	if set&infoSubscriptionCount == 0 {
		info.SubscriptionCount = nil
	}
	return info, nil
}

// users is GET /apps/{app_id}/channels/{channel_name}/users: the distinct
// members of a presence channel.
func (a *API) users(r request) (any, error) {
	ch, err := parseChannelParam(r)
	if err != nil {
		return nil, err
	}
	if ch.Kind != channel.Presence {
		return nil, refuse(http.StatusBadRequest, "Users may only be listed for presence channels")
	}
	members, err := a.cfg.Hub.Members(r.Context(), r.app.ID, ch.Name)
	if err != nil {
		return nil, unavailable("listing the members of "+strconv.Quote(ch.Name), err)
	}
	type user struct {
		ID string `json:"id"`
	}
	out := make([]user, len(members))
	for i, m := range members {
		out[i].ID = m.UserID
	}
	return map[string]any{"users": out}, nil
}

// maxTerminateUserID is the longest user id terminate takes, in
// characters: what Pusher's server SDKs allow.
const maxTerminateUserID = 200

// terminate is POST /apps/{app_id}/users/{user_id}/terminate_connections.
func (a *API) terminate(r request) (any, error) {
	id := r.PathValue("user_id")
	// Not channel.ValidUserID, the bound of Pusher sign-in ids: users are
	// shared with the Centrifugo front end, whose token's sub may be any
	// text ("auth0|5f3c", say). Up to the server SDKs' 200 characters.
	if id == "" || !utf8.ValidString(id) || utf8.RuneCountInString(id) > maxTerminateUserID {
		return nil, refuse(http.StatusBadRequest, "invalid user id %q", truncate(id, 64))
	}
	if err := a.cfg.Hub.TerminateUser(r.Context(), r.app.ID, id); err != nil {
		return nil, unavailable("terminating the user's connections", err)
	}
	return struct{}{}, nil
}
