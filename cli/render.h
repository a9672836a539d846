// The CLI's rendering: pure functions from reply JSON (docs/protocol.md) to
// the text a person reads. Commands call them after a request; tests call
// them with canned replies. Nothing here talks to a service.
#pragma once

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "common/protocol.h"

namespace gantry::cli {

// "512 B", "1.5 KiB", "3.0 GiB" (binary units, one decimal past bytes).
std::string FormatBytes(double bytes);
// Four significant digits: "0.1235", "1.235e+04".
std::string FormatNumber(double x);
// "loss=0.25 test_accuracy=0.87" from {name: number}; non-numbers skipped; "-" if none.
std::string FormatMetrics(const json& metrics);
// "production,#best!" from a version's aliases and tags ('!' = protected); "-" if none.
std::string FormatLabels(const json& version);
// "model@ref" -> {model, ref}; no '@' means latest.
std::pair<std::string, std::string> SplitRef(const std::string& s);
// Left-aligned columns two spaces apart, one line per row, header first.
std::string FormatTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
// A job's run time from its wire form (started_at/finished_at; now if still running), "-" before it started.
std::string JobDuration(const json& job);

// ok when a request of `request_bytes` fits the frame limit a service's
// ping reply states (max_message_bytes; absent = not checked), else
// invalid_argument naming `what`, both sizes and the storage flag to raise.
Status CheckRequestFits(const json& ping_reply, uint64_t request_bytes, const std::string& what);

// `gantry jobs`: the table of a list_jobs reply, or a hint when it is empty.
void RenderJobs(const json& list_jobs_reply, std::ostream& out);
// The START column of `gantry jobs`: for a waiting job its estimated start
// relative to `now` ("in 4m10s", "now", "unknown"), "-" for the others.
std::string EstimatedStart(const json& job, double now);
// `gantry job show`: a get_job reply.
void RenderJob(const json& get_job_reply, std::ostream& out);

}  // namespace gantry::cli
