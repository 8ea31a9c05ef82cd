import { useMemo } from 'react';
import { useQuery } from '@tanstack/react-query';
import { api } from './client';
import type { NodeTypeDescriptor } from '../model/workflow';

const EMPTY: NodeTypeDescriptor[] = [];

/** The node types (palette and descriptors), fetched once per session. */
export function useNodeTypes() {
  const q = useQuery({ queryKey: ['nodeTypes'], queryFn: api.nodeTypes, staleTime: Infinity });
  const types = q.data?.items ?? EMPTY;
  const registry = useMemo(() => new Map(types.map((t) => [t.type, t])), [types]);
  return { ...q, types, registry };
}
