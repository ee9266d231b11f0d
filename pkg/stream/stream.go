// Package stream holds veo4k's NATS JetStream topology: stream and consumer
// names, subject builders, and the idempotent creation of each stream.
//
// Every service that talks to JetStream goes through here, so the contracts of
// DESIGN.md ("NATS JetStream topology") live in one place.
package stream

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the streams and of the fetchers' shared consumer.
const (
	Callbacks   = "VEO4K_CALLBACKS"
	Videos      = "VEO4K_VIDEOS"
	DeadLetters = "VEO4K_DEADLETTERS"
	Fetcher     = "fetcher"
)

// Retention is how long callbacks are kept: the provider deletes its files
// after 14 days, so a callback older than that is of no use.
const Retention = 14 * 24 * time.Hour

// Outcome is the subject suffix of a callback: one stored message per entry and
// outcome, so a success is never swallowed as a duplicate of an earlier failure.
type Outcome string

// The outcomes of a callback.
const (
	Success Outcome = "success"
	Failure Outcome = "failure"
)

// Subjects.
const (
	CallbacksFilter   = "veo4k.callbacks.4k.>"
	VideosFilter      = "veo4k.videos.>"
	CatalogedFilter   = "veo4k.videos.cataloged.>"
	FailedFilter      = "veo4k.videos.failed.>"
	DeadLettersFilter = "veo4k.deadletters.>"
)

// CallbackSubject is where the ingress publishes the callback of one entry.
// Task ids are validated against ^[A-Za-z0-9_-]{1,128}$ before they get here,
// so they are always a single, wildcard-free subject token.
func CallbackSubject(taskID string, index int, o Outcome) string {
	return "veo4k.callbacks.4k." + taskID + "." + strconv.Itoa(index) + "." + string(o)
}

// ReplaySubject is where a dead-lettered callback is published again. The
// sequence makes each replay its own subject, so the per-subject guard that
// absorbs repeated callbacks does not absorb a deliberate replay.
func ReplaySubject(taskID string, index int, seq uint64) string {
	return "veo4k.callbacks.4k." + taskID + "." + strconv.Itoa(index) + ".replay." + strconv.FormatUint(seq, 10)
}

// CallbackMsgID is the Nats-Msg-Id of a callback: a publish retried after a lost ack is absorbed.
func CallbackMsgID(taskID string, index int, o Outcome) string {
	return taskID + "." + strconv.Itoa(index) + "." + string(o)
}

// CatalogedSubject is where the VideoCataloged event of an entry is published.
func CatalogedSubject(taskID string, index int) string {
	return "veo4k.videos.cataloged." + taskID + "." + strconv.Itoa(index)
}

// FailedSubject is where the VideoFailed events of an entry are published.
func FailedSubject(taskID string, index int) string {
	return "veo4k.videos.failed." + taskID + "." + strconv.Itoa(index)
}

// DeadLetterSubject is where an entry's dead-lettered callback is kept.
func DeadLetterSubject(taskID string, index int) string {
	return "veo4k.deadletters." + taskID + "." + strconv.Itoa(index)
}

// Options are the settings that differ between deployments.
type Options struct {
	// Replicas is the stream replica count: 1 on a single server, 3 on a cluster.
	Replicas int
	// Memory keeps streams in memory instead of files (tests only).
	Memory bool
}

func (o Options) storage() jetstream.StorageType {
	if o.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

func (o Options) replicas() int {
	if o.Replicas < 1 {
		return 1
	}
	return o.Replicas
}

// CallbacksConfig is the configuration of VEO4K_CALLBACKS.
//
// MaxMsgsPerSubject 1 with DiscardNewPerSubject is the permanent per-entry
// guard: a repeated callback, even a week later, is refused by the server
// instead of being stored twice. Messages are kept (limits retention), never
// deleted on ack, so the guard and the evidence last the whole retention.
func CallbacksConfig(o Options) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:                 Callbacks,
		Description:          "veo4k: provider 4K callbacks accepted by the ingress",
		Subjects:             []string{CallbacksFilter},
		Retention:            jetstream.LimitsPolicy,
		Storage:              o.storage(),
		Replicas:             o.replicas(),
		MaxAge:               Retention,
		Duplicates:           2 * time.Minute,
		MaxMsgsPerSubject:    1,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
	}
}

// VideosConfig is the configuration of VEO4K_VIDEOS, the completion events.
// Its long duplicate window absorbs a re-publish after a fetcher crash.
func VideosConfig(o Options) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Videos,
		Description: "veo4k: VideoCataloged and VideoFailed events",
		Subjects:    []string{VideosFilter},
		Retention:   jetstream.LimitsPolicy,
		Storage:     o.storage(),
		Replicas:    o.replicas(),
		MaxAge:      30 * 24 * time.Hour,
		Duplicates:  24 * time.Hour,
	}
}

// DeadLettersConfig is the configuration of VEO4K_DEADLETTERS: the last
// callback of each entry that failed for good, kept for inspection and replay.
func DeadLettersConfig(o Options) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              DeadLetters,
		Description:       "veo4k: callbacks whose entry failed, for inspection and replay",
		Subjects:          []string{DeadLettersFilter},
		Retention:         jetstream.LimitsPolicy,
		Storage:           o.storage(),
		Replicas:          o.replicas(),
		MaxAge:            Retention,
		MaxMsgsPerSubject: 1,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
	}
}

// Ensure creates or updates the given streams; it is safe to call from every
// process at every start.
func Ensure(ctx context.Context, js jetstream.JetStream, cfgs ...jetstream.StreamConfig) error {
	for _, cfg := range cfgs {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("creating or updating stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}
