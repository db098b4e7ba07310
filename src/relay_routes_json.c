/* relay_routes_json.c - route tables as JSON (src/relay_routes_json.h). */
#include "relay_routes_json.h"

static json_t *route_json(const struct qkd_route *rt)
{
	json_t *path = json_array();

	for (size_t i = 0; path != NULL && i <= rt->hops; i++)
		if (json_array_append_new(path, json_string(rt->path[i])) != 0) {
			json_decref(path);
			return NULL;
		}
	if (path == NULL)
		return NULL;
	return json_pack("{s:s, s:s, s:f, s:I, s:o}", "dest", rt->dest, "next_hop", rt->next_hop,
			 "cost", rt->cost, "hops", (json_int_t)rt->hops, "path", path);
}

json_t *relay_routes_json(const struct qkd_routes *rts)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < qkd_routes_count(rts); i++)
		if (json_array_append_new(a, route_json(qkd_routes_at(rts, i))) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}
