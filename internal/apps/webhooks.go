package apps

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Webhook is one target of an app's webhooks: where they are POSTed and
// which of them.
type Webhook struct {
	// URL is an http:// or https:// URL.
	URL string `yaml:"url"`
	// Headers are sent with every request, besides Herald's own
	// (X-Pusher-Key, X-Pusher-Signature, Content-Type), which they may not
	// replace.
	Headers map[string]string `yaml:"headers"`
	// EventTypes, when not empty, are the only events sent (names of
	// WebhookEventTypes).
	EventTypes []string `yaml:"event_types"`
	// ChannelPrefix and ChannelSuffix, when set, restrict the events to
	// channels whose names start and end with them.
	ChannelPrefix string `yaml:"channel_prefix"`
	ChannelSuffix string `yaml:"channel_suffix"`
}

// WebhookEventTypes are the events Herald sends, by their Pusher names.
var WebhookEventTypes = []string{
	"channel_occupied", "channel_vacated", "member_added", "member_removed",
	"client_event", "cache_miss", "subscription_count",
}

// reservedHeaders are set by Herald on every webhook.
var reservedHeaders = []string{"X-Pusher-Key", "X-Pusher-Signature", "Content-Type", "Content-Length", "Host"}

// validateWebhooks reports the first target of the app that cannot be used.
func (a *App) validateWebhooks() error {
	for i, w := range a.Webhooks {
		where := fmt.Sprintf("app %s: webhooks[%d]", a.ID, i)
		u, err := url.Parse(w.URL)
		switch {
		case w.URL == "":
			return fmt.Errorf("%s: url is empty", where)
		case err != nil:
			// url.Parse quotes the URL, which may hold credentials.
			return fmt.Errorf("%s: url does not parse", where)
		case u.Scheme != "http" && u.Scheme != "https":
			return fmt.Errorf("%s: url must start with http:// or https://", where)
		case u.Host == "":
			return fmt.Errorf("%s: url has no host", where)
		}
		for _, t := range w.EventTypes {
			if !slices.Contains(WebhookEventTypes, t) {
				return fmt.Errorf("%s: unknown event type %q (want one of %s)", where, t, strings.Join(WebhookEventTypes, ", "))
			}
		}
		for name, v := range w.Headers {
			canon := http.CanonicalHeaderKey(name)
			switch {
			case !validHeaderName(name):
				return fmt.Errorf("%s: header name %q is not a valid HTTP header name", where, name)
			case slices.Contains(reservedHeaders, canon):
				return fmt.Errorf("%s: header %s is set by Herald and cannot be replaced", where, canon)
			case strings.ContainsAny(v, "\r\n\x00"):
				return fmt.Errorf("%s: header %s has a line break or NUL in its value", where, canon)
			}
		}
	}
	return nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}
