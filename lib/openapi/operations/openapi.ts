import { z } from "zod";
import type { OpenApiOperation } from "../registry";

export const openApiOperations: OpenApiOperation[] = [
  {
    method: "get",
    path: "/api/v1/openapi.json",
    operationId: "getOpenApiDocument",
    summary: "This document",
    description: "Public: it describes the API and contains no data.",
    tags: ["meta"],
    permission: null,
    responses: { 200: { description: "OpenAPI 3.1 document.", schema: z.object({ openapi: z.literal("3.1.0") }).loose() } },
  },
];
