package centrifugo

import "github.com/heraldhq/herald/internal/hub"

// Reply error codes (Centrifugo's).
const (
	ErrInternal         = 100
	ErrUnauthorized     = 101
	ErrUnknownChannel   = 102
	ErrPermissionDenied = 103
	ErrMethodNotFound   = 104
	ErrAlreadySub       = 105
	ErrLimitExceeded    = 106
	ErrBadRequest       = 107
	ErrNotAvailable     = 108
	ErrTokenExpired     = 109
	ErrExpired          = 110
	ErrTooManyRequests  = 111
)

// errorMessages are the messages Centrifugo sends with each reply code.
var errorMessages = map[int]string{
	ErrInternal:         "internal server error",
	ErrUnauthorized:     "unauthorized",
	ErrUnknownChannel:   "unknown channel",
	ErrPermissionDenied: "permission denied",
	ErrMethodNotFound:   "method not found",
	ErrAlreadySub:       "already subscribed",
	ErrLimitExceeded:    "limit exceeded",
	ErrBadRequest:       "bad request",
	ErrNotAvailable:     "not available",
	ErrTokenExpired:     "token expired",
	ErrExpired:          "expired",
	ErrTooManyRequests:  "too many requests",
}

// temporary reports whether the client should retry a reply error.
func temporary(code int) bool { return code == ErrInternal || code == ErrTooManyRequests }

// Disconnect codes, sent as the WebSocket close code with a plain-text
// reason: centrifuge-js treats a terminal code (3500-3999) as final only
// when the reason is non-empty and does not parse as JSON.
const (
	CloseShutdown          = 3001
	CloseInternal          = 3004
	CloseExpired           = 3005
	CloseSubExpired        = 3006
	CloseSlow              = 3008
	CloseInsufficientState = 3010
	CloseNoPong            = 3012
	CloseTooManyRequests   = 3013
	CloseInvalidToken      = 3500
	CloseBadRequest        = 3501
	CloseStale             = 3502
	CloseForceDisconnect   = 3503
	CloseConnectionLimit   = 3504
	ClosePermissionDenied  = 3507
)

// Unsubscribe push codes.
const (
	UnsubServer  = 2000
	UnsubExpired = 2501
)

// closeCode is the one mapping of the hub's close reasons to Centrifugo
// disconnect codes and reasons.
func closeCode(r hub.CloseReason) (int, string) {
	switch r {
	case hub.ReasonProtocolError:
		return CloseBadRequest, "bad request"
	case hub.ReasonSlowConsumer:
		return CloseSlow, "slow"
	case hub.ReasonPongTimeout:
		return CloseNoPong, "no pong"
	case hub.ReasonSigninTimeout:
		// The Centrifugo front end's use of it: no connect command in time.
		return CloseStale, "stale"
	case hub.ReasonTerminated:
		return CloseForceDisconnect, "force disconnect"
	case hub.ReasonShutdown:
		return CloseShutdown, "shutdown"
	case hub.ReasonOverCapacity:
		// The node is full; another attempt (perhaps on another node) may
		// succeed, so the code is one the client reconnects after.
		return CloseTooManyRequests, "too many requests"
	case hub.ReasonOverQuota:
		return CloseConnectionLimit, "connection limit"
	case hub.ReasonRefused:
		return CloseBadRequest, "bad request"
	case hub.ReasonUnauthorized:
		return CloseInvalidToken, "invalid token"
	}
	return CloseInternal, "internal server error"
}
