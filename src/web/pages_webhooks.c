/* /settings/webhooks: the caller's webhooks (created through the API), their state (disabled
 * by hand or after a run of failed deliveries), the recent deliveries with their status,
 * latency and response excerpt, and buttons to enable, disable and replay. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "util/error.h"
#include "web/internal.h"
#include "webhooks/webhooks.h"

#define WEB_DELIVERIES_SHOWN 10

struct hook_page {
  web_page *p;
  int n;
};

static int delivery_row(const db_webhook_delivery *d, void *payload) {
  struct hook_page *l = payload;
  web_page *p = l->p;
  char when[40], status[16] = "—", latency[24] = "—";
  web_fmt_ago(when, sizeof when, d->updated_ms);
  if (d->status) snprintf(status, sizeof status, "%d", d->status);
  if (d->attempts) snprintf(latency, sizeof latency, "%lld ms", (long long)d->latency_ms);
  html_f(&p->b,
         "<tr><td class=\"mono\">%L</td><td>%t.%t</td><td><span class=\"badge\">%t</span></td>"
         "<td class=\"num\">%d</td><td class=\"num\">%t</td><td class=\"num\">%t</td>"
         "<td class=\"hide-s\">%t</td><td class=\"hide-s mono\">%t%t%t</td></tr>",
         (long long)d->id, d->scope, d->action, d->state, d->attempts, status, latency, when,
         d->error, d->error[0] && d->response[0] ? " — " : "", d->response);
  l->n++;
  return 0;
}

static int hook_card(const db_webhook *w, void *payload) {
  struct hook_page *l = payload;
  web_page *p = l->p;
  html_f(&p->b,
         "<div class=\"card webhook\" id=\"hook-%a\"><h2 class=\"mt0 mono\">%t</h2>"
         "<p class=\"hint\">id <span class=\"mono\">%t</span> · watches <span "
         "class=\"mono\">%t</span> · domains <span class=\"mono\">%t</span> · secret %s</p>",
         w->uid, w->url, w->uid, w->watched, w->domains, w->secret[0] ? "set" : "none");
  if (w->disabled)
    html_f(&p->b,
           "<p class=\"flash flash-err\">Disabled%s. <span class=\"hint\">%d consecutive "
           "deliveries given up.</span></p>",
           !strcmp(w->disabled_reason, "failures")
               ? " automatically after repeated failed deliveries"
               : " by hand",
           w->failures);
  else
    html_f(&p->b,
           "<p><span class=\"badge\">enabled</span> <span class=\"hint\">%d consecutive "
           "deliveries given up</span></p>",
           w->failures);
  html_f(&p->b, "<form method=\"post\" action=\"/settings/webhooks/%u/%s\">", w->uid,
         w->disabled ? "enable" : "disable");
  web_csrf_input(p);
  html_f(&p->b, "<button class=\"btn btn-sm\" type=\"submit\">%s</button></form>",
         w->disabled ? "Enable" : "Disable");
  html_f(&p->b, "<h3>Recent deliveries</h3><div class=\"boxed scroll\"><table class=\"list\">"
                "<thead><tr><th>#</th><th>Event</th><th>State</th><th>Attempts</th>"
                "<th>Status</th><th>Latency</th><th class=\"hide-s\">When</th>"
                "<th class=\"hide-s\">Error / response</th></tr></thead><tbody>");
  struct hook_page dl = {p, 0};
  db_webhook_deliveries(w->id, 0, WEB_DELIVERIES_SHOWN, delivery_row, &dl);
  html_f(&p->b, "</tbody></table></div>");
  if (!dl.n) html_f(&p->b, "<p class=\"muted\">No deliveries yet.</p>");
  html_f(&p->b, "<form method=\"post\" action=\"/settings/webhooks/%u/replay\" class=\"inline\">",
         w->uid);
  web_csrf_input(p);
  html_f(&p->b,
         "<label for=\"replay-%a\">Replay delivery #</label><input type=\"number\" "
         "id=\"replay-%a\" name=\"delivery\" min=\"1\" required> <button class=\"btn "
         "btn-sm\" type=\"submit\">Replay</button></form></div>",
         w->uid, w->uid);
  l->n++;
  return 0;
}

static int hooks_page(hub_req *r, int status, const char *error, const char *notice) {
  web_page p;
  web_page_begin(&p, r, "Webhooks");
  html_f(&p.b, "<h1>Webhooks</h1><p class=\"muted\">Webhooks POST the Hub's payloads to a URL "
               "when repos you watch change. Create and edit them through "
               "<code>/api/settings/webhooks</code> (<code>huggingface_hub</code>'s "
               "<code>create_webhook</code>).</p>");
  if (error) html_f(&p.b, "<div class=\"flash flash-err\" role=\"alert\">%t</div>", error);
  if (notice) html_f(&p.b, "<div class=\"flash flash-ok\">%t</div>", notice);
  struct hook_page l = {&p, 0};
  db_webhook_list(r->who.user_id, hook_card, &l);
  if (!l.n) html_f(&p.b, "<p class=\"muted\">No webhooks yet.</p>");
  web_page_end(&p);
  return web_page_send(&p, status);
}

static int need_session(hub_req *r) {
  if (!r->who.authenticated) return HUB_EAUTH;
  if (!auth_full_credential(&r->who))
    return hub_error_set(HUB_EFORBIDDEN,
                         "Managing webhooks needs a write token or a browser session");
  return 0;
}

int web_h_webhooks(hub_req *r) {
  int rc = need_session(r);
  if (rc) return web_error_code(r, rc);
  const char *done = http_param(r, "done");
  return hooks_page(r, 200, NULL,
                    done && !strcmp(done, "enable")    ? "Webhook enabled."
                    : done && !strcmp(done, "disable") ? "Webhook disabled."
                    : done && !strcmp(done, "replay")  ? "Delivery queued again."
                                                       : NULL);
}

static int toggle(hub_req *r, int disabled) {
  int rc = need_session(r);
  if (!rc) rc = web_csrf_check(r);
  if (rc) return web_error_code(r, rc);
  db_webhook w;
  if ((rc = webhooks_set_disabled(r, r->cap[0], disabled, &w)))
    return hooks_page(r, rc == HUB_ENOTFOUND ? 404 : 400, hub_error_msg(), NULL);
  return web_redirect(r, disabled ? "/settings/webhooks?done=disable"
                                  : "/settings/webhooks?done=enable");
}

int web_h_webhook_enable_post(hub_req *r) {
  return toggle(r, 0);
}

int web_h_webhook_disable_post(hub_req *r) {
  return toggle(r, 1);
}

int web_h_webhook_replay_post(hub_req *r) {
  int rc = need_session(r);
  if (!rc) rc = web_csrf_check(r);
  if (rc) return web_error_code(r, rc);
  const char *ds = web_form(r, "delivery");
  if (!ds || !*ds || strlen(ds) > 18 || strspn(ds, "0123456789") != strlen(ds))
    return hooks_page(r, 400, "Give the number of a delivery to replay.", NULL);
  int64_t nid = 0;
  if ((rc = webhooks_replay(r, r->cap[0], strtoll(ds, NULL, 10), &nid)))
    return hooks_page(r, rc == HUB_ENOTFOUND ? 404 : 409, hub_error_msg(), NULL);
  return web_redirect(r, "/settings/webhooks?done=replay");
}
