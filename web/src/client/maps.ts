/** Typed calls of the dataset maps' API (/api/maps/*, docs/maps.md). */
import { get, post, type Schemas } from "./api";

export type PromptsMap = Schemas["PromptsMap"];
export type UnitsMap = Schemas["UnitsMap"];
export type MapJob = Schemas["MapJob"];
export type MapInfo = Schemas["MapInfo"];
export type MapComputeRequest = Schemas["MapComputeRequest"];

export const getPromptsMap = (signal?: AbortSignal): Promise<PromptsMap> => get("/api/maps/prompts", signal);
export const getUnitsMap = (signal?: AbortSignal): Promise<UnitsMap> => get("/api/maps/units", signal);
export const computeMaps = (body: MapComputeRequest): Promise<MapJob> => post("/api/maps/compute", body);
