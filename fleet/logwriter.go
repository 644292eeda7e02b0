package fleet

import (
	"strings"

	"github.com/rs/zerolog"
)

// logWriter turns memberlist's log lines into zerolog events, and counts
// the packets and streams it refused. memberlist has no other way to
// tell: its log is the only place a rejection shows.
type logWriter struct{ f *Fleet }

// Write takes one line: log.Logger writes each line with one call.
func (w logWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\r\n")
	level, msg := parseLogLine(line)
	if reason := rejectReason(msg); reason != "" {
		w.f.reject(reason)
	}
	w.f.log.WithLevel(level).Str("source", "memberlist").Msg(msg)
	return len(p), nil
}

// parseLogLine splits memberlist's "[LEVEL] memberlist: text" into a
// level and the text. Lines without a tag are info, but "Err:" ones.
func parseLogLine(line string) (zerolog.Level, string) {
	level := zerolog.InfoLevel
	msg := line
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			switch line[1:i] {
			case "ERR", "ERROR":
				level = zerolog.ErrorLevel
			case "WARN", "WARNING":
				level = zerolog.WarnLevel
			case "INFO":
				level = zerolog.InfoLevel
			case "DEBUG":
				level = zerolog.DebugLevel
			case "TRACE":
				level = zerolog.TraceLevel
			}
			msg = strings.TrimSpace(line[i+1:])
		}
	} else if strings.HasPrefix(line, "Err:") {
		level = zerolog.ErrorLevel
	}
	return level, strings.TrimPrefix(msg, "memberlist: ")
}

// rejectReason classifies a line that reports input this node refused
// (memberlist v0.7.0's net.go and security.go): "decrypt" for a packet
// or stream that no key opens or that is plain text where encryption is
// required (a node with another or no key), "label" for one of another
// cluster. A "remote error" is the other node's refusal of ours: that
// node counts it.
func rejectReason(msg string) string {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "remote error"):
		return ""
	case strings.Contains(m, "unacceptable label"):
		return "label"
	case strings.Contains(m, "decrypt packet failed"),
		strings.Contains(m, "no installed keys could decrypt"),
		strings.Contains(m, "failed to decrypt"),
		strings.Contains(m, "encryption is configured but remote state is not encrypted"),
		strings.Contains(m, "remote state is encrypted and encryption is not configured"):
		return "decrypt"
	}
	return ""
}
