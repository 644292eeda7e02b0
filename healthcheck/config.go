package healthcheck

import "time"

// Config is a check as written in a YAML config file: the keys the CLI's
// decoder (mapstructure) fills in. The server's pools and the VIP agent's
// tracks both use it, so a check is written the same way in both files.
// Zero values mean "the default", as in Spec.
type Config struct {
	Type         string        `mapstructure:"type"`
	Port         int           `mapstructure:"port"`
	Path         string        `mapstructure:"path"`
	Method       string        `mapstructure:"method"`
	Host         string        `mapstructure:"host"`
	SNI          string        `mapstructure:"sni"`
	Expect       string        `mapstructure:"expect"`
	Body         string        `mapstructure:"body"`
	Insecure     bool          `mapstructure:"insecure"`
	Name         string        `mapstructure:"name"`
	QType        string        `mapstructure:"qtype"`
	Rcode        string        `mapstructure:"rcode"`
	Answer       string        `mapstructure:"answer"`
	Command      []string      `mapstructure:"command"`
	Interval     time.Duration `mapstructure:"interval"`
	Timeout      time.Duration `mapstructure:"timeout"`
	Rise         int           `mapstructure:"rise"`
	Fall         int           `mapstructure:"fall"`
	Jitter       time.Duration `mapstructure:"jitter"`
	FastInterval time.Duration `mapstructure:"fast_interval"`
	Initial      string        `mapstructure:"initial"`
	Watch        *bool         `mapstructure:"watch"`
}

// Spec returns the Spec the config describes.
func (c *Config) Spec() Spec {
	return Spec{
		Type: c.Type, Port: c.Port, Path: c.Path, Method: c.Method, Host: c.Host, SNI: c.SNI,
		Expect: c.Expect, Body: c.Body, Insecure: c.Insecure, Name: c.Name, QType: c.QType,
		Rcode: c.Rcode, Answer: c.Answer, Command: c.Command, Interval: c.Interval,
		Timeout: c.Timeout, Rise: c.Rise, Fall: c.Fall, Jitter: c.Jitter,
		FastInterval: c.FastInterval, Initial: c.Initial, Watch: c.Watch,
	}
}
