/* Shared inside security/ only. */
#ifndef HUB_SECURITY_INTERNAL_H
#define HUB_SECURITY_INTERNAL_H

#include "security/security.h"

extern int sec__site_policy; /* MODELHUB_SCAN_POLICY */

/* A short message naming a report's finding at its level (out ≥ 256). */
void sec__finding_message(const json_t *report, char *out, size_t cap);
/* This process's counters (service.c). */
void sec__metrics_counters(hub_buf *b);

#endif
