// Graph nodes and edges → what the canvas draws: type title, ports, problems and run status
// folded into each node's data. A per-element cache returns the same object while nothing it
// depends on changed, so React Flow re-renders only the nodes an edit, a finding or a run
// event touched.
//
// Node sizes React Flow measures are kept here (`noteDimensions`), not in the editor state:
// sending them back through the state would hand React Flow a new object for every node once
// they are measured, and it would adopt and re-render them all (a quarter of the first render
// of a 500-node workflow). Instead the node objects made here get the size written into them
// (as in React Flow's uncontrolled mode; the minimap reads sizes from them), and a node object
// made later (moved, edited) carries its last measured size.

import type { Node, NodeChange } from '@xyflow/react';
import type { NodeTypeDescriptor, PortSpec, WfNode } from '../model/workflow';
import { isTrigger, outputPorts } from '../model/workflow';
import type { NodeRunState, NodeStatus } from '../live/runState';
import type { GEdge, GNode } from './mapping';
import { worst, type Problem } from './problems';

export interface CmViewData extends Record<string, unknown> {
  wf: WfNode;
  label: string;
  typeTitle: string;
  category: string;
  icon: string;
  ports: PortSpec[];
  trigger: boolean;
  problem?: 'error' | 'warning';
  problemCount: number;
  status?: NodeStatus;
  durationMs?: number;
  visits?: number;
}

export type ViewNode = Omit<GNode, 'data'> & { data: CmViewData };

export interface DecorateContext {
  registry: ReadonlyMap<string, NodeTypeDescriptor>;
  problemsByNode: ReadonlyMap<string, Problem[]>;
  problemsByEdge: ReadonlyMap<string, Problem[]>;
  statuses?: Readonly<Record<string, NodeRunState>>;
}

interface NodeEntry {
  src: GNode;
  /** What `data` was made from: the graph node's data (not the node: moves and measurements
   * make a new node with the same data), the type, problems, run state, ports in use. */
  srcData: GNode['data'];
  desc: NodeTypeDescriptor | undefined;
  problems: Problem[] | undefined;
  run: NodeRunState | undefined;
  used: string;
  out: ViewNode;
}

interface EdgeEntry {
  src: GEdge;
  problems: Problem[] | undefined;
  out: GEdge;
}

export interface Size {
  width: number;
  height: number;
}

export class Decorator {
  private nodes = new Map<string, NodeEntry>();
  private edges = new Map<string, EdgeEntry>();
  private sizes = new Map<string, Size>();

  /**
   * Keeps the sizes of React Flow's `dimensions` changes; returns the other changes (for the
   * state) and whether there were sizes.
   */
  noteDimensions<T extends Node>(changes: NodeChange<T>[]): { rest: NodeChange<T>[]; measured: boolean } {
    let measured = false;
    const rest: NodeChange<T>[] = [];
    for (const c of changes) {
      if (c.type === 'dimensions') {
        if (c.dimensions) {
          const size = { width: c.dimensions.width, height: c.dimensions.height };
          this.sizes.set(c.id, size);
          const e = this.nodes.get(c.id);
          if (e) e.out.measured = size;
        }
        measured = true;
      } else rest.push(c);
    }
    return { rest, measured };
  }

  /** The last measured size of a node. */
  sizeOf(id: string): Size | undefined {
    return this.sizes.get(id);
  }

  decorateNodes(nodes: readonly GNode[], edges: readonly GEdge[], ctx: DecorateContext): ViewNode[] {
    // Ports edges leave from that the node's type does not list (drawn so the edge shows).
    const used = new Map<string, Set<string>>();
    for (const e of edges) {
      const port = e.sourceHandle ?? 'out';
      let s = used.get(e.source);
      if (!s) used.set(e.source, (s = new Set()));
      s.add(port);
    }
    const next = new Map<string, NodeEntry>();
    const out = nodes.map((n) => {
      const wf = n.data.wf;
      const desc = ctx.registry.get(wf.type);
      const problems = ctx.problemsByNode.get(wf.id);
      const run = ctx.statuses?.[wf.id];
      const usedKey = [...(used.get(n.id) ?? [])].join('|');
      const prev = this.nodes.get(n.id);
      const sameData = prev && prev.srcData === n.data && prev.desc === desc && prev.problems === problems && prev.run === run && prev.used === usedKey;
      if (prev && sameData && prev.src === n) {
        next.set(n.id, prev);
        return prev.out;
      }
      if (prev && sameData) {
        // Moved, measured or (de)selected: a new node object, the same data object, so the
        // memoized node component does not render again.
        const view: ViewNode = { ...n, data: prev.out.data, measured: this.sizes.get(n.id) ?? n.measured };
        next.set(n.id, { ...prev, src: n, out: view });
        return view;
      }
      const ports = [...outputPorts(wf, desc)];
      for (const p of used.get(n.id) ?? []) {
        if (!ports.some((x) => x.name === p)) ports.push({ name: p, label: `${p} (unknown)` });
      }
      const data: CmViewData = {
        wf,
        label: wf.name || wf.id,
        typeTitle: desc?.title ?? wf.type,
        category: desc?.category ?? (wf.type.split('.')[0] || 'unknown'),
        icon: desc?.icon ?? '',
        ports,
        trigger: desc ? desc.category === 'trigger' : isTrigger(wf.type),
        problem: worst(problems),
        problemCount: problems?.length ?? 0,
        status: run?.status,
        durationMs: run?.durationMs,
        visits: run?.visits,
      };
      const view: ViewNode = { ...n, data, measured: this.sizes.get(n.id) ?? n.measured };
      next.set(n.id, { src: n, srcData: n.data, desc, problems, run, used: usedKey, out: view });
      return view;
    });
    this.nodes = next;
    return out;
  }

  decorateEdges(edges: readonly GEdge[], ctx: DecorateContext): GEdge[] {
    const next = new Map<string, EdgeEntry>();
    const out = edges.map((e) => {
      const problems = ctx.problemsByEdge.get(e.id);
      const prev = this.edges.get(e.id);
      if (prev && prev.src === e && prev.problems === problems) {
        next.set(e.id, prev);
        return prev.out;
      }
      const w = worst(problems);
      const view: GEdge = w ? { ...e, className: `edge-${w}`, ariaLabel: problems?.[0]?.finding.message } : e;
      next.set(e.id, { src: e, problems, out: view });
      return view;
    });
    this.edges = next;
    return out;
  }
}
