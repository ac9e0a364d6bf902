// Package devauth is the authorization of development setups: the
// appauth handlers with a decision that allows everyone. herald
// auth-server serves it on a port of its own, and a Herald serving its
// built-in development app serves it itself, at /pusher/auth and
// /pusher/user-auth, so that private and presence channels can be tried
// without writing a backend. Anyone who can reach it can subscribe to
// anything: it is never for production.
package devauth

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/heraldhq/herald/appauth"
)

// Paths of the endpoints, pusher-js's defaults.
const (
	ChannelPath = "/pusher/auth"
	UserPath    = "/pusher/user-auth"
)

// Warning is what a command serving these endpoints says, loudly.
const Warning = "WARNING: /pusher/auth and /pusher/user-auth authorize EVERYONE for every channel (development only)"

// Decide returns the allow-all decision: every channel but those starting
// with one of deny; the user is the request's user_id parameter (with
// user_info, a JSON text, from the user_info parameter) or, without one,
// a generated id. A user_id that cannot be a user id, or a user_info that is
// not JSON, is refused.
func Decide(deny []string) appauth.DecideFunc {
	return func(r *appauth.Request) appauth.Decision {
		for _, p := range deny {
			if p != "" && strings.HasPrefix(r.Channel, p) {
				return appauth.Deny()
			}
		}
		id := r.Params.Get("user_id")
		if id == "" {
			id = generatedID()
		} else if !appauth.ValidUserID(id) {
			return appauth.Deny()
		}
		d := appauth.AllowUser(id, nil)
		if info := r.Params.Get("user_info"); info != "" {
			if !json.Valid([]byte(info)) {
				return appauth.Deny()
			}
			d.UserInfo = json.RawMessage(info)
		}
		return d
	}
}

func generatedID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "user-" + hex.EncodeToString(b)
}

// Options configure the endpoints.
type Options struct {
	Key, Secret string
	// JWTSecret signs the subscription tokens of Centrifuge batches
	// (HS256); empty: the app secret, as Herald verifies them.
	JWTSecret string
	// JWTAudience and JWTIssuer are the app's jwt_audience and jwt_issuer,
	// the aud and iss of those tokens: Herald refuses the app's tokens
	// without them.
	JWTAudience, JWTIssuer string
	// EncryptionMasterKey, 32 bytes or nil, enables private-encrypted
	// channels.
	EncryptionMasterKey []byte
	// Deny are channel prefixes refused, to try refusals.
	Deny []string
	// AllowedOrigins are the cross-site origins allowed (JSONP, CORS).
	AllowedOrigins []string
	// AnyOrigin answers CORS for every origin. The development app's
	// secret is public, so its endpoints protect nothing a page could not
	// sign itself.
	AnyOrigin bool
}

// Handler serves ChannelPath and UserPath.
func Handler(o Options) (http.Handler, error) {
	jwtKey := o.JWTSecret
	if jwtKey == "" {
		jwtKey = o.Secret
	}
	tokens, err := appauth.NewTokenSigner("HS256", []byte(jwtKey))
	if err != nil {
		return nil, err
	}
	a, err := appauth.New(appauth.Options{
		Key: o.Key, Secret: o.Secret, EncryptionMasterKey: o.EncryptionMasterKey, Tokens: tokens,
		SubscriptionAudience: o.JWTAudience, SubscriptionIssuer: o.JWTIssuer,
		AllowedOrigins: o.AllowedOrigins, Decide: Decide(o.Deny),
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(ChannelPath, a.ChannelHandler())
	mux.Handle(UserPath, a.UserHandler())
	if o.AnyOrigin {
		return anyOrigin(mux), nil
	}
	return mux, nil
}

// anyOrigin answers CORS for every origin, without credentials (pusher-js
// sends none).
func anyOrigin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") == "" {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.Header().Set("Access-Control-Allow-Methods", "POST")
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				w.Header().Set("Access-Control-Allow-Headers", req)
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}
