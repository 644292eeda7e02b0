package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/spf13/cobra"
)

// The admin client commands: status, drain, undrain, reload. They talk to a
// running server's admin API; --admin and --token fall back to DNSLB_ADMIN
// and DNSLB_ADMIN_TOKEN.

const defaultAdminAddr = "127.0.0.1:8053"

type adminFlags struct {
	addr  string
	token string
}

func (f *adminFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.addr, "admin", "", "admin API address, host:port or URL (env DNSLB_ADMIN; default "+defaultAdminAddr+")")
	cmd.Flags().StringVar(&f.token, "token", "", "the server's admin.token, for reads and changes when it sets one (env DNSLB_ADMIN_TOKEN)")
}

// client resolves flags, then environment, then defaults.
func (f *adminFlags) client(cmd *cobra.Command) (*adminClient, error) {
	addr, token := f.addr, f.token
	if !cmd.Flags().Changed("admin") {
		addr = os.Getenv(envAdmin)
	}
	if !cmd.Flags().Changed("token") {
		token = os.Getenv(envAdminToken)
	}
	if addr == "" {
		addr = defaultAdminAddr
	}
	c, err := admin.NewClient(addr, admin.ClientOptions{Token: token})
	if err != nil {
		return nil, fmt.Errorf("--admin %q: want host:port or an http(s) URL", addr)
	}
	return &adminClient{Client: c, token: token}, nil
}

// adminClient is the API's client with the commands' advice on errors.
type adminClient struct {
	*admin.Client
	token string
}

// explain adds to an error of the API what the user can do about it.
func (c *adminClient) explain(err error) error {
	var ae *admin.APIError
	switch {
	case errors.Is(err, admin.ErrUnreachable):
		return fmt.Errorf("%w (is dnslb serve running with admin: set? --admin, DNSLB_ADMIN)", err)
	case !errors.As(err, &ae):
		return err
	}
	hint := ""
	switch ae.StatusCode {
	case http.StatusUnauthorized:
		hint = "check --token / DNSLB_ADMIN_TOKEN"
		if c.token == "" {
			hint = "the server wants a token: pass --token or set DNSLB_ADMIN_TOKEN"
		}
	case http.StatusForbidden:
		hint = "run this on the server itself, or set a token in the server's admin config"
	case http.StatusMisdirectedRequest:
		hint = "give --admin as an IP address, or list the name in the server's admin.allowed_hosts"
	}
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w; %s", err, hint)
}

func newStatusCommand() *cobra.Command {
	var af adminFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [POOL]",
		Short: "Show pools, members and zones of a running server (from its admin API)",
		Long: `Show every pool and member of a running dnslb server: state, since when,
probe latency, weight, share of recent answers, overrides and the last probe
error; then the zones with their serials and load errors.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af.client(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var pools []admin.PoolStatus
			if len(args) == 1 {
				p, err := c.Pool(ctx, args[0])
				if err != nil {
					return c.explain(err)
				}
				pools = []admin.PoolStatus{p}
			} else if pools, err = c.Pools(ctx); err != nil {
				return c.explain(err)
			}
			var zones []admin.ZoneStatus
			var fleet *admin.FleetStatus
			if len(args) == 0 {
				if zones, err = c.Zones(ctx); err != nil {
					return c.explain(err)
				}
				fs, err := c.Fleet(ctx)
				var ae *admin.APIError
				switch {
				case err == nil:
					fleet = &fs
				case errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound:
					// in no fleet (or an older server): no section
				default:
					return c.explain(err)
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if len(args) == 1 {
					return enc.Encode(pools[0])
				}
				return enc.Encode(struct {
					Pools []admin.PoolStatus `json:"pools"`
					Zones []admin.ZoneStatus `json:"zones"`
					Fleet *admin.FleetStatus `json:"fleet,omitempty"`
				}{pools, zones, fleet})
			}
			printPools(out, pools, time.Now())
			if len(args) == 0 {
				fmt.Fprintln(out)
				printZones(out, zones, time.Now())
				if fleet != nil {
					fmt.Fprintln(out)
					printFleet(out, *fleet, time.Now())
				}
			}
			return nil
		},
	}
	af.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of tables")
	return cmd
}

// printPools writes one row per member.
func printPools(w io.Writer, pools []admin.PoolStatus, now time.Time) {
	if len(pools) == 0 {
		fmt.Fprintln(w, "no pools")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tMEMBER\tSTATE\tSINCE\tLATENCY\tWEIGHT\tSHARE\tNOTES\tLAST ERROR")
	for _, p := range pools {
		if len(p.Members) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\tno members\t\n", p.Name)
		}
		for _, m := range p.Members {
			lastErr := m.LastError
			if lastErr == "" {
				lastErr = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.1f%%\t%s\t%s\n",
				p.Name, m.Address, m.State, agoText(now, m.Since), latencyText(m.Latency, m.Checked),
				weightText(m), m.Share*100, memberNotes(m, now), oneLine(lastErr))
		}
	}
	tw.Flush()
	for _, p := range pools {
		if p.AllDown {
			fmt.Fprintf(w, "ALL DOWN: %s answers by its when_all_down fallback: %s%s\n", p.Name, fallbackText(p.Fallback), familiesText(p.AllDownFamilies))
		}
	}
}

// weightText is the weight a member is answered by, and the configured
// one after it when they differ ("2/10": ramping, or a live weight).
func weightText(m admin.MemberStatus) string {
	if m.EffectiveWeight == m.Weight {
		return strconv.Itoa(m.Weight)
	}
	return strconv.Itoa(m.EffectiveWeight) + "/" + strconv.Itoa(m.Weight)
}

func fallbackText(f string) string {
	switch f {
	case "all":
		return "every member (fail-open)"
	case "backup":
		return "the backups"
	case "empty":
		return "NODATA (empty)"
	}
	return f
}

func familiesText(fams []string) string {
	if len(fams) != 1 {
		return ""
	}
	return " (" + fams[0] + " only)"
}

func memberNotes(m admin.MemberStatus, now time.Time) string {
	var notes []string
	if m.Backup {
		notes = append(notes, "backup")
	}
	if !m.Checked {
		notes = append(notes, "unchecked")
	} else if m.State != "up" && m.State != "down" && !m.Healthy {
		notes = append(notes, "check failing")
	}
	if o := m.Override; o != nil {
		s := string(o.Mode)
		if o.Reason != "" {
			s += " " + strconv.Quote(o.Reason)
		}
		if !o.Until.IsZero() {
			if o.Until.After(now) {
				s += " for " + shortDuration(o.Until.Sub(now))
			} else {
				s += " (expired)"
			}
		}
		notes = append(notes, s)
	}
	if len(m.Fleet) > 0 {
		// Only a disagreement is news: "fleet: b down".
		var down []string
		for _, n := range slices.Sorted(maps.Keys(m.Fleet)) {
			if v := m.Fleet[n]; v != "up" {
				down = append(down, n+" "+v)
			}
		}
		if len(down) > 0 {
			notes = append(notes, "fleet: "+strings.Join(down, ", "))
		}
	}
	if len(notes) == 0 {
		return "-"
	}
	return strings.Join(notes, ", ")
}

func printZones(w io.Writer, zones []admin.ZoneStatus, now time.Time) {
	if len(zones) == 0 {
		fmt.Fprintln(w, "no zones")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tSERIAL\tRECORDS\tLOADED\tSTATUS")
	var broken []admin.ZoneStatus
	for _, z := range zones {
		status := "ok"
		if z.Error != "" {
			status = "LOAD ERROR (serving the previous data)"
			if z.LoadedAt.IsZero() {
				status = "LOAD ERROR (not served)"
			}
			broken = append(broken, z)
		}
		if z.Primary != "" {
			switch {
			case z.Expired && z.LoadedAt.IsZero():
				status = "NOT TRANSFERRED (SERVFAIL) from " + z.Primary
			case z.Expired:
				status = "EXPIRED (SERVFAIL) from " + z.Primary
			case status == "ok":
				status = "ok, from " + z.Primary
			}
		}
		if d := z.DNSSEC; d != nil {
			var active []string
			for _, k := range d.Keys {
				if k.State == "active" {
					active = append(active, fmt.Sprintf("%s %d", k.Role, k.Tag))
				}
			}
			status += "; signed by " + strings.Join(active, ", ")
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", z.Origin, z.Serial, z.Records, agoText(now, z.LoadedAt), status)
	}
	tw.Flush()
	for _, z := range broken {
		fmt.Fprintf(w, "\n%s:\n", z.Origin)
		for _, line := range strings.Split(strings.TrimRight(z.Error, "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
}

// printFleet writes one row per node, then the divergences.
func printFleet(w io.Writer, fs admin.FleetStatus, now time.Time) {
	head := fmt.Sprintf("fleet %s: health %s", fs.Name, fs.Health)
	if fs.ProbesPerTarget > 0 {
		head += fmt.Sprintf(", %d probe(s) per target", fs.ProbesPerTarget)
	}
	if fs.Isolated {
		head += "; ISOLATED (no other node alive: answering from this node's own checks)"
	}
	fmt.Fprintln(w, head)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tSTATE\tLAST CONTACT\tTARGETS\tDOWN")
	for _, n := range fs.Nodes {
		name, contact := n.Name, agoText(now, n.LastContact)
		if n.Self {
			name, contact = n.Name+" (this node)", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", name, n.Address, n.State, contact, len(n.Observations), n.Down)
	}
	tw.Flush()
	for _, d := range fs.Divergences {
		if d.What == "serial" {
			fmt.Fprintf(w, "  %s disagrees on %s: serial %s there, %s here\n", d.Node, d.Zone, d.Theirs, d.Ours)
		} else {
			fmt.Fprintf(w, "  %s disagrees on the pools' config: %s there, %s here\n", d.Node, d.Theirs, d.Ours)
		}
	}
}

func newDrainCommand() *cobra.Command {
	var af adminFlags
	var reason string
	var dur time.Duration
	var forceDown bool
	cmd := &cobra.Command{
		Use:   "drain ADDRESS",
		Short: "Stop answering with a member (it keeps being health-checked)",
		Long: `Drain a member address in every pool that has it: it leaves the answers
but keeps being checked. The drain survives reloads and restarts; with --for
it lifts itself after that long. --force-down instead marks it down, as if
its health check failed.`,
		Example: `  dnslb drain 192.0.2.10 --reason "kernel upgrade" --for 30m`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dur < 0 {
				return fmt.Errorf("--for %v: must be positive", dur)
			}
			req := admin.OverrideRequest{Reason: reason}
			if dur > 0 {
				req.For = dur.String()
			}
			if forceDown {
				return runOverride(cmd, &af, "force-down", func(ctx context.Context, c *adminClient) (admin.OverrideResult, error) {
					return c.ForceDown(ctx, args[0], req)
				})
			}
			return runOverride(cmd, &af, "drain", func(ctx context.Context, c *adminClient) (admin.OverrideResult, error) {
				return c.Drain(ctx, args[0], req)
			})
		},
	}
	af.register(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why (logged, shown in status)")
	cmd.Flags().DurationVar(&dur, "for", 0, "lift the drain after this long, e.g. 30m (default: until undrained)")
	cmd.Flags().BoolVar(&forceDown, "force-down", false, "mark the member down instead of drained")
	return cmd
}

func newUndrainCommand() *cobra.Command {
	var af adminFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "undrain ADDRESS",
		Short: "Lift a drain or force-down: the member is answered again when healthy",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOverride(cmd, &af, "undrain", func(ctx context.Context, c *adminClient) (admin.OverrideResult, error) {
				return c.Undrain(ctx, args[0], reason)
			})
		},
	}
	af.register(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why (logged)")
	return cmd
}

// runOverride makes the change (action names it) and prints its result.
func runOverride(cmd *cobra.Command, af *adminFlags, action string, change func(context.Context, *adminClient) (admin.OverrideResult, error)) error {
	c, err := af.client(cmd)
	if err != nil {
		return err
	}
	res, err := change(cmd.Context(), c)
	if err != nil {
		return fmt.Errorf("%s: %w", action, c.explain(err))
	}
	out := cmd.OutOrStdout()
	now := time.Now()
	what := map[string]string{"drain": "drained", "force-down": "forced down", "undrain": "undrained"}[action]
	fmt.Fprintf(out, "%s %s in %d pool(s)", what, res.Address, len(res.Members))
	if !res.Until.IsZero() {
		fmt.Fprintf(out, " until %s (%s)", res.Until.Local().Format("2006-01-02 15:04:05 MST"), shortDuration(res.Until.Sub(now)))
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tMEMBER\tSTATE\tNOTES")
	for _, m := range res.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Pool, m.Address, m.State, memberNotes(m.MemberStatus, now))
	}
	return tw.Flush()
}

func newReloadCommand() *cobra.Command {
	var af adminFlags
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make a running server re-read its config and zones",
		Long: `Make a running server re-read its config and zone files. On an error the
server keeps serving the old data and this command prints the problems
(file:line: message) and exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af.client(cmd)
			if err != nil {
				return err
			}
			if err := c.Reload(cmd.Context()); err != nil {
				var ae *admin.APIError
				if errors.As(err, &ae) && ae.StatusCode == http.StatusUnprocessableEntity {
					fmt.Fprintln(cmd.ErrOrStderr(), "reload failed; the server keeps serving the previous config and zones:")
					for _, line := range strings.Split(strings.TrimRight(ae.Message, "\n"), "\n") {
						fmt.Fprintln(cmd.ErrOrStderr(), line)
					}
					return exitError{code: 1}
				}
				return fmt.Errorf("reload: %w", c.explain(err))
			}
			fmt.Fprintln(cmd.OutOrStdout(), "reloaded")
			return nil
		},
	}
	af.register(cmd)
	return cmd
}

func agoText(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if d := now.Sub(t); d >= 0 {
		return shortDuration(d) + " ago"
	}
	return "in " + shortDuration(t.Sub(now))
}

// shortDuration: 45s, 3m4s, 2h5m, 3d4h.
func shortDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

func latencyText(d time.Duration, checked bool) string {
	if !checked || d <= 0 {
		return "-"
	}
	if d < time.Millisecond {
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return d.Round(100 * time.Microsecond).String()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
