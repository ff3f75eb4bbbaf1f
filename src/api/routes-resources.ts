import { z } from 'zod';
import { listImages, showImage } from '../image/index.js';
import { listNetworks, showNetwork } from '../network/index.js';
import { HostViewSchema, listHosts } from '../host/index.js';
import { labelSchema } from '../pool/index.js';
import { listTemplates, showTemplate } from '../template/index.js';
import type { VmDeps } from '../vm/index.js';
import { defineRoute, type AnyRoute } from './route.js';
import {
  imageDetailView,
  ImageDetailSchema,
  imageView,
  ImageViewSchema,
  networkDetailView,
  NetworkDetailSchema,
  networkView,
  NetworkViewSchema,
  templateApiView,
  TemplateDetailSchema,
  TemplateViewSchema,
} from './views.js';

export const NameParams = z.strictObject({ name: labelSchema });

/** Images, templates, networks and hosts: read-only, through the same service functions as the CLI. */
export function resourceRoutes(deps: VmDeps): AnyRoute[] {
  return [
    defineRoute({
      method: 'GET', path: '/v1/images', operationId: 'listImages', tag: 'images', summary: 'Registered images',
      status: 200, response: z.array(ImageViewSchema), responseName: 'ImageList',
      handler: async () => (await listImages(deps.db)).map(imageView),
    }),
    defineRoute({
      method: 'GET', path: '/v1/images/{name}', operationId: 'getImage', tag: 'images', summary: 'One image, its manifest checked against its files',
      params: NameParams, status: 200, response: ImageDetailSchema, responseName: 'ImageDetail', errors: [404],
      handler: async ({ params }) => imageDetailView(await showImage(deps.db, params.name)),
    }),
    defineRoute({
      method: 'GET', path: '/v1/templates', operationId: 'listTemplates', tag: 'templates', summary: 'Frozen templates with their children counts',
      status: 200, response: z.array(TemplateViewSchema), responseName: 'TemplateList',
      handler: async () => (await listTemplates(deps)).map(templateApiView),
    }),
    defineRoute({
      method: 'GET', path: '/v1/templates/{name}', operationId: 'getTemplate', tag: 'templates', summary: 'One template with its record and children',
      params: NameParams, status: 200, response: TemplateDetailSchema, responseName: 'TemplateDetail', errors: [404],
      handler: async ({ params }) => templateApiView(await showTemplate(deps, params.name)),
    }),
    defineRoute({
      method: 'GET', path: '/v1/networks', operationId: 'listNetworks', tag: 'networks', summary: 'Networks with their address usage',
      status: 200, response: z.array(NetworkViewSchema), responseName: 'NetworkList',
      handler: async () => (await listNetworks(deps.db)).map(networkView),
    }),
    defineRoute({
      method: 'GET', path: '/v1/networks/{name}', operationId: 'getNetwork', tag: 'networks', summary: 'One network with its leases',
      params: NameParams, status: 200, response: NetworkDetailSchema, responseName: 'NetworkDetail', errors: [404],
      handler: async ({ params }) => networkDetailView(await showNetwork(deps.db, params.name)),
    }),
    defineRoute({
      method: 'GET', path: '/v1/hosts', operationId: 'listHosts', tag: 'hosts', summary: 'Hosts with their datastores and free space',
      status: 200, response: z.array(HostViewSchema), responseName: 'HostList',
      handler: () => listHosts(deps),
    }),
  ];
}
